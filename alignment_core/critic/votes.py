"""Extra voters (e.g. a remote LLM judge) and how their votes join the critic's own.

A voter returns, per item, a `Vote` with probabilities over VERDICTS, or None when it has no
usable answer. The blend is log-linear:

    log p(v) = log p_critic(v) + head correction(v) + sum_voters weight_voter * log p_voter(v)

so a voter with weight 0 changes nothing and a missing vote counts as no evidence. A voter's
weight starts at DEFAULT_VOTER_WEIGHT and is learned from expert decisions by the head (see
head.py: `train_head(..., votes=...)`), like the head's other weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alignment_core.critic.base import VERDICTS, CritiqueInput, Span

DEFAULT_VOTER_WEIGHT = 1.0  # before any expert label, a voter counts as much as the critic
VOTE_FLOOR = 1e-3  # a voter's "impossible" is never infinitely sure


@dataclass
class Vote:
    """One voter's judgement of one item."""

    probabilities: dict[str, float]  # over VERDICTS; normalised on use
    verdict: str = ""
    category: str = ""
    severity: int | None = None
    spans: list[Span] = field(default_factory=list)
    explanation: str = ""


class Voter(Protocol):
    name: str

    def vote(self, items: list[CritiqueInput]) -> list[Vote | None]: ...


def vote_log_probs(probabilities: dict[str, float] | None) -> np.ndarray:
    """log p over VERDICTS (floored and normalised); zeros when there is no vote."""
    if not probabilities:
        return np.zeros(len(VERDICTS))
    p = np.array([max(float(probabilities.get(v, 0.0)), VOTE_FLOOR) for v in VERDICTS])
    return np.log(p / p.sum())


def votes_tensor(votes: list[dict[str, dict[str, float]]] | None, names: list[str],
                 n: int) -> np.ndarray:
    """(n, len(names), 4) log-probabilities of each named voter's vote per item (0: no vote)."""
    out = np.zeros((n, len(names), len(VERDICTS)))
    for k, by_voter in enumerate(votes or []):
        for j, name in enumerate(names):
            out[k, j] = vote_log_probs((by_voter or {}).get(name))
    return out
