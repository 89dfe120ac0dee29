"""How much an expert's label on an item would teach the critic (for the review queue).

An item teaches most where the critic is unsure: its four-way distribution is spread out
(normalised entropy), or the question it cannot settle is whether the request is harmful at
all (the request factor near 0.5, which flips safe <-> unsafe and refusal <-> over-refusal).
The score is in [0, 1]; the Django side can add it to the queue's priority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from alignment_core.critic.base import VERDICTS

ENTROPY_SHARE = 0.7  # the rest is the request factor's own uncertainty


def _entropy(p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1.0)
    return float(-(p * np.log(p)).sum())


def informativeness(probabilities: Sequence[float] | Mapping[str, float] | np.ndarray,
                    harmful_request: float | None = None) -> float:
    """Expected teaching value of a label: 0 (the critic is sure) .. 1 (a coin toss)."""
    if isinstance(probabilities, Mapping):
        probabilities = [probabilities.get(v, 0.0) for v in VERDICTS]
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(VERDICTS), 1 / len(VERDICTS))
    spread = _entropy(p) / np.log(len(p))
    if harmful_request is None:
        return float(spread)
    h = float(np.clip(harmful_request, 0.0, 1.0))
    request = _entropy(np.array([h, 1 - h])) / np.log(2)
    return float(ENTROPY_SHARE * spread + (1 - ENTROPY_SHARE) * request)
