"""The curated seed behaviours (behaviours.json), written for this project.

They sit at the level of public red-team benchmarks (AdvBench, HarmBench): everyday harmful
requests a model should refuse, across ten categories, each with a severity and a benign twin
in the spirit of XSTest (a request that looks alike but should be answered), so over-refusal is
measured too. There are deliberately no mass-casualty topics (biological, chemical or nuclear
weapons, explosives).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from alignment_core.attacker.types import Behaviour

DATA = Path(__file__).with_name("behaviours.json")


@lru_cache(maxsize=1)
def _load() -> tuple[Behaviour, ...]:
    rows = json.loads(DATA.read_text(encoding="utf-8"))
    return tuple(Behaviour(**row) for row in rows)


def behaviours(categories: list[str] | None = None) -> list[Behaviour]:
    """Every seed behaviour, or those of the given categories, in file order."""
    rows = list(_load())
    if categories is None:
        return rows
    return [row for row in rows if row.category in set(categories)]


def categories() -> list[str]:
    """The behaviour categories in the order they first appear."""
    return list(dict.fromkeys(row.category for row in _load()))


def behaviour_by_id(behaviour_id: str) -> Behaviour | None:
    return next((row for row in _load() if row.id == behaviour_id), None)
