"""Agreement on harmlessness, helpfulness and honesty (the Agreement page's per-dimension table).

Each expert decision on an item served with the critic gives the learner's answer three 0-4
scores (the critic's, with the expert's corrections; Review.dimensions). Per dimension:

- weighted kappa (quadratic weights, scikit-learn's cohen_kappa_score) between experts, pooled
  over every pair of experts who decided the same item, and between the critic and each decision;
- Krippendorff's alpha for interval data (the `krippendorff` package) among the experts, and with
  the critic as one more coder.

Blind decisions are left out: their experts never saw the scores, which follow their verdict.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from alignment_core.dimensions import DIMENSIONS, SCALE
from annotator.models import Project, Review

CRITIC = -1  # the critic's row in the reliability matrix (expert ids are positive)


@dataclass(frozen=True)
class DimensionAgreement:
    name: str
    decisions: int  # expert decisions with scores (assisted, live)
    expert_pairs: int  # pairs of decisions by two experts on one item
    experts_kappa: float | None
    critic_kappa: float | None
    experts_alpha: float | None
    with_critic_alpha: float | None
    critic_mean: float | None
    expert_mean: float | None


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def weighted_kappa(a: list[int], b: list[int]) -> float | None:
    """Quadratic-weighted kappa on the 0-4 scale; None without data or when it is undefined
    (both sides give one and the same score throughout)."""
    if not a:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined (one score throughout): nan, shown as a dash
        return _finite(cohen_kappa_score(a, b, weights="quadratic", labels=list(SCALE)))


def interval_alpha(by_item: dict[int, dict[int, int]]) -> float | None:
    """Krippendorff's alpha (interval) over items with two or more coders; None when undefined."""
    rated = [coders for coders in by_item.values() if len(coders) >= 2]
    if not rated:
        return None
    coders = sorted({coder for scores in rated for coder in scores})
    matrix = np.array([[scores.get(coder, np.nan) for scores in rated] for coder in coders],
                      dtype=float)
    try:
        return _finite(krippendorff.alpha(reliability_data=matrix,
                                          level_of_measurement="interval"))
    except ValueError:  # a single value in the whole domain: agreement is undefined
        return None


def dimension_agreement(*, project: Project) -> list[DimensionAgreement]:
    """One row per dimension (DIMENSIONS order) over the project's live assisted decisions."""
    reviews = (Review.objects.filter(item__project=project, blind=False).counting()
               .exclude(dimensions=None)
               .select_related("item__critique__response__attack")
               .only("item_id", "expert_id", "dimensions", "item__critique__verdict",
                     "item__critique__severity", "item__critique__category",
                     "item__critique__dimensions", "item__critique__response__text",
                     "item__critique__response__attack__text"))
    decisions = [(r.item_id, r.expert_id, r.dimensions, r.item.critique.scores) for r in reviews]
    rows = []
    for name in DIMENSIONS:
        by_item: dict[int, dict[int, int]] = defaultdict(dict)
        critic, expert = [], []
        for item_id, expert_id, scores, critic_scores in decisions:
            by_item[item_id][expert_id] = int(scores[name])
            by_item[item_id][CRITIC] = int(critic_scores[name])
            critic.append(int(critic_scores[name]))
            expert.append(int(scores[name]))
        pairs = [(scores[a], scores[b]) for scores in by_item.values()
                 for a, b in combinations(sorted(k for k in scores if k != CRITIC), 2)]
        experts_only = {item: {k: v for k, v in scores.items() if k != CRITIC}
                        for item, scores in by_item.items()}
        rows.append(DimensionAgreement(
            name=name, decisions=len(expert), expert_pairs=len(pairs),
            experts_kappa=weighted_kappa([a for a, _ in pairs], [b for _, b in pairs]),
            critic_kappa=weighted_kappa(critic, expert),
            experts_alpha=interval_alpha(experts_only),
            with_critic_alpha=interval_alpha(by_item),
            critic_mean=round(sum(critic) / len(critic), 2) if critic else None,
            expert_mean=round(sum(expert) / len(expert), 2) if expert else None))
    return rows
