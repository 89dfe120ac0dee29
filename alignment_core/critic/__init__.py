"""The critic: judges learner responses and writes structured critiques.

Layers: objective detectors (canaries, refusal phrases) -> a classifier (rules plus a learned
head on MiniLM embeddings) -> a language model that writes the explanation and the revision.
Pick a critic by name with `make_critic("layered", learner=..., head=...)`.
"""

from alignment_core.critic.base import (
    CRITICS,
    DEFAULT_CRITIC,
    VERDICTS,
    Cancelled,
    Critic,
    Critique,
    CritiqueInput,
    Span,
    make_critic,
    make_span,
    register_critic,
)
from alignment_core.critic.head import MIN_EXAMPLES, LearnedHead, train_head
from alignment_core.critic.layered import LayeredCritic, RulesCritic

__all__ = [
    "CRITICS", "DEFAULT_CRITIC", "MIN_EXAMPLES", "VERDICTS", "Cancelled", "Critic", "Critique",
    "CritiqueInput", "LayeredCritic", "LearnedHead", "RulesCritic", "Span", "make_critic",
    "make_span", "register_critic", "train_head",
]
