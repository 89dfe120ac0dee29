"""`python -m alignment_core.training ...`: see alignment_core.training.cli."""

from .cli import main

main()
