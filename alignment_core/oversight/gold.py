"""Gold accuracy per expert, with a binomial confidence interval.

A gold item is an adjudicated item whose label an admin has fixed. Experts meet gold items
unannounced in their queue; each answer is scored against the gold label and never changes it
(this module only reads the gold labels). Intervals come from scipy's `binomtest`:
Clopper-Pearson ("exact") by default, because it never undercovers, which matters with the few
dozen gold answers a real expert gives; Wilson is narrower and offered for larger samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from alignment_core.oversight.types import ExpertVerdict, check_labels

INTERVAL_METHODS = {"clopper-pearson": "exact", "wilson": "wilson"}


@dataclass(frozen=True)
class Proportion:
    """k successes out of n with a confidence interval; rate, lo and hi are None when n = 0."""

    k: int
    n: int
    rate: float | None
    lo: float | None
    hi: float | None
    confidence: float
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def proportion(k: int, n: int, *, confidence: float = 0.95,
               method: str = "clopper-pearson") -> Proportion:
    """The rate k/n and its two-sided interval at `confidence`, by `method` (see module doc)."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"Unknown interval method {method!r}; use one of {sorted(INTERVAL_METHODS)}")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    if not 0 <= k <= n:
        raise ValueError(f"Need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Proportion(0, 0, None, None, None, confidence, method)
    # Imported here: scipy.stats takes most of a second to import, and the review pages import
    # this package (for the sampler) in every web worker.
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence,
                                       method=INTERVAL_METHODS[method])
    return Proportion(k, n, k / n, float(ci.low), float(ci.high), confidence, method)


@dataclass(frozen=True)
class GoldScore:
    """How one expert did on the gold items they answered."""

    expert_id: str
    accuracy: Proportion  # correct answers out of gold items answered
    # confusion[gold verdict][expert's verdict] = count, only for the verdicts that occurred
    confusion: dict[str, dict[str, int]]

    def to_dict(self) -> dict:
        return {"expert_id": self.expert_id, "accuracy": self.accuracy.to_dict(),
                "confusion": self.confusion}


def gold_accuracy(verdicts: Iterable[ExpertVerdict], gold: Mapping[str, str], *,
                  confidence: float = 0.95, method: str = "clopper-pearson") -> list[GoldScore]:
    """Score every expert's answers on gold items; experts sorted by id.

    Only verdicts on items in `gold` count. Experts who answered no gold item are left out (a
    row of "0 of 0" would read like a score). Assisted and blind answers count alike here; the
    assisted-vs-blind comparison splits them.
    """
    check_labels(gold, "Gold")
    hits: dict[str, list[int]] = {}
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    for v in verdicts:
        if v.item_id not in gold:
            continue
        truth = gold[v.item_id]
        hits.setdefault(v.expert_id, []).append(int(v.verdict == truth))
        row = confusion.setdefault(v.expert_id, {}).setdefault(truth, {})
        row[v.verdict] = row.get(v.verdict, 0) + 1
    return [GoldScore(expert_id=e,
                      accuracy=proportion(sum(hits[e]), len(hits[e]), confidence=confidence,
                                          method=method),
                      confusion=confusion[e])
            for e in sorted(hits)]
