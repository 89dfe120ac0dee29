"""Auto-accept with a guarantee: a confidence threshold that audits show is safe to trust.

Given audited critiques as (confidence, verdict was correct) pairs, the threshold is the lowest
confidence t such that, among audits with confidence >= t, the one-sided Clopper-Pearson lower
bound on precision (at `level`, default 95%) still meets the target precision. Until the audits
support one, there is no threshold and nothing is auto-accepted. `audits_to_lower` says how many
more correct audits at a lower candidate threshold would let the threshold move down to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

DEFAULT_TARGET = 0.95
DEFAULT_LEVEL = 0.95
MAX_EXTRA_AUDITS = 10_000


def precision_lower_bound(correct: int, n: int, level: float = DEFAULT_LEVEL) -> float:
    """One-sided Clopper-Pearson lower bound on a proportion: Beta(alpha; k, n - k + 1)."""
    if n <= 0 or correct <= 0:
        return 0.0
    return float(beta.ppf(1.0 - level, correct, n - correct + 1))


@dataclass
class Threshold:
    """The auto-accept decision the audits support."""

    threshold: float | None  # None: the audits do not support auto-accepting anything yet
    lower_bound: float | None  # the precision bound above the threshold
    n_above: int  # audits at or above the threshold
    correct_above: int
    target: float
    level: float
    n_audits: int


def _candidates(confidence: np.ndarray, correct: np.ndarray) -> list[tuple[float, int, int]]:
    """(t, n_above, correct_above) for each distinct audited confidence, highest first."""
    if len(confidence) == 0:
        return []
    order = np.argsort(-confidence, kind="stable")
    c, y = confidence[order], correct[order]
    n_above = np.arange(1, len(c) + 1)
    k_above = np.cumsum(y)
    # Keep the last position of each run of equal confidences: a threshold admits ties together.
    last = np.r_[c[1:] != c[:-1], True]
    return [(float(c[i]), int(n_above[i]), int(k_above[i])) for i in np.flatnonzero(last)]


def auto_accept_threshold(confidence: Sequence[float], correct: Sequence[bool],
                          target: float = DEFAULT_TARGET,
                          level: float = DEFAULT_LEVEL) -> Threshold:
    """The lowest audited confidence whose precision bound above it meets `target`."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if len(c) != len(y):
        raise ValueError("confidence and correct must have the same length")
    if not 0.0 < target < 1.0:
        raise ValueError("target precision must be between 0 and 1")
    best = Threshold(None, None, 0, 0, target, level, len(c))
    for t, n, k in _candidates(c, y):
        bound = precision_lower_bound(k, n, level)
        if bound >= target:
            best = Threshold(t, bound, n, k, target, level, len(c))
    return best


@dataclass
class Lowering:
    """How many more audits, all judged correct, would move the threshold down to `to`."""

    to: float
    more_correct_audits: int


def extra_correct_needed(correct: int, n: int, target: float,
                         level: float = DEFAULT_LEVEL) -> int | None:
    """Smallest m with lower_bound(correct + m, n + m) >= target (None past MAX_EXTRA_AUDITS)."""
    if precision_lower_bound(correct, n, level) >= target:
        return 0
    lo, hi = 1, 1
    while precision_lower_bound(correct + hi, n + hi, level) < target:
        hi *= 2
        if hi > MAX_EXTRA_AUDITS:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if precision_lower_bound(correct + mid, n + mid, level) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def audits_to_lower(confidence: Sequence[float], correct: Sequence[bool],
                    target: float = DEFAULT_TARGET, level: float = DEFAULT_LEVEL) -> Lowering | None:
    """The next lower candidate threshold that extra correct audits could unlock, and how many.

    Candidates are the audited confidences below the current threshold (all of them when there
    is none); the one needing the fewest extra correct audits is returned, the higher one on a
    tie. None when no candidate can be reached (or there is nothing below the threshold).
    """
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    current = auto_accept_threshold(c, y, target, level).threshold
    best: Lowering | None = None
    for t, n, k in _candidates(c, y):
        if current is not None and t >= current:
            continue
        need = extra_correct_needed(k, n, target, level)
        if need is not None and (best is None or need < best.more_correct_audits):
            best = Lowering(to=t, more_correct_audits=need)
    return best
