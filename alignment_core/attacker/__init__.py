"""The attacker: seed behaviours, canaries, strategies, converters and de-duplication."""

from alignment_core.attacker.canaries import canaries, canary_by_id
from alignment_core.attacker.converters import CONVERTERS, apply_converters
from alignment_core.attacker.diversity import deduplicate, diversity, self_bleu
from alignment_core.attacker.generate import generate_attacks
from alignment_core.attacker.seeds import behaviour_by_id, behaviours, categories
from alignment_core.attacker.strategies import STRATEGIES, Strategy
from alignment_core.attacker.types import (
    CANARY_CATEGORY,
    Attack,
    AttackConfig,
    Behaviour,
    Canary,
    Goal,
    ScoredAttack,
)

__all__ = [
    "CANARY_CATEGORY", "CONVERTERS", "STRATEGIES", "Attack", "AttackConfig", "Behaviour",
    "Canary", "Goal", "ScoredAttack", "Strategy", "apply_converters", "behaviour_by_id",
    "behaviours", "canaries", "canary_by_id", "categories", "deduplicate", "diversity",
    "generate_attacks", "self_bleu",
]
