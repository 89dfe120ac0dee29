"""The converter strategy: the goal passed through a chain of obfuscating converters."""

from __future__ import annotations

from alignment_core.attacker.converters import CONVERTERS, apply_converters
from alignment_core.attacker.strategies.base import Strategy
from alignment_core.attacker.types import Attack, Goal


class ConverterStrategy(Strategy):
    """Uses the configured chain if one is given, else a random chain of one or two converters."""

    name = "converter"

    def chain(self) -> list[str]:
        if self.converters:
            return list(self.converters)
        return self.rng.sample(sorted(CONVERTERS), k=self.rng.choice((1, 1, 2)))

    def generate(self, goals: list[Goal]) -> list[Attack]:
        attacks = []
        for goal in goals:
            chain = self.chain()
            text = apply_converters(goal.text, chain, self.rng)
            attacks.append(goal.attack(text, self.name, meta={"converters": chain}))
        return attacks
