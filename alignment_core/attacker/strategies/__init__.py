"""Attack strategies, registered by name."""

from alignment_core.attacker.strategies.base import SLOT, Strategy, fill
from alignment_core.attacker.strategies.converter import ConverterStrategy
from alignment_core.attacker.strategies.evolutionary import Evolutionary
from alignment_core.attacker.strategies.fewshot import FewShotLM
from alignment_core.attacker.strategies.multi_turn import MultiTurn
from alignment_core.attacker.strategies.templates import (
    Direct,
    Hypothetical,
    PrefixInjection,
    RefusalSuppression,
    RolePlay,
)

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (Direct, RolePlay, Hypothetical, RefusalSuppression, PrefixInjection,
                ConverterStrategy, FewShotLM, Evolutionary, MultiTurn)
}

__all__ = ["SLOT", "STRATEGIES", "Strategy", "fill"]
