"""The load benchmark in miniature: 5 simulated experts for 8 seconds against gunicorn.

No timing is asserted (figures belong to `python benchmarks/load.py`); what must hold at any
speed is that no request failed and every acknowledged decision is in the database.
"""

from __future__ import annotations

import json
import subprocess

from scripts.live_server import PYTHON, REPO


def test_a_short_load_run_has_no_errors_and_loses_no_decision(tmp_path) -> None:
    done = subprocess.run([PYTHON, "benchmarks/load.py", "--users", "5", "--seconds", "8",
                           "--items", "400"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["users"] == 5
    assert result["errors"] == 0, done.stdout
    assert result["decisions_acknowledged"] > 0, done.stdout
    assert result["lost"] == 0 and result["unacknowledged"] == 0, done.stdout
    assert result["decisions_stored"] == result["decisions_acknowledged"]
