"""The Strategy interface: a named, pluggable way of turning goals into attacks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from alignment_core.attacker.types import Attack, Goal, ScoredAttack

SLOT = "{goal}"  # where a template takes the goal text


def fill(template: str, goal: str) -> str:
    """Put the goal into the slot (str.replace, so braces inside a goal are harmless)."""
    return template.replace(SLOT, goal)


class Strategy:
    """Base class. Subclasses set `name` and implement `generate(goals) -> attacks`.

    One instance serves one call of `generate_attacks`; it gets its own seeded random generator,
    the learner (for strategies that let the LM write attacks), earlier scored attacks, and the
    converter chain from the attack config.
    """

    name: ClassVar[str] = ""
    needs_learner: ClassVar[bool] = False

    def __init__(
        self,
        rng: random.Random,
        learner=None,
        history: Sequence[ScoredAttack] = (),
        converters: Sequence[str] = (),
    ) -> None:
        self.rng = rng
        self.learner = learner
        self.history = list(history)
        self.converters = list(converters)

    def generate(self, goals: list[Goal]) -> list[Attack]:
        """Return one attack per goal, in the same order."""
        raise NotImplementedError
