"""Follow clusters from one discovery run to the next, so that decisions about them stick.

Every run clusters afresh (new attacks arrive after each campaign), so cluster ids change
whenever membership changes. `carry_over` pairs each new cluster with the earlier cluster it
continues: mostly the same attacks, or, when many attacks are new, requests about the same
thing (centroids in request space nearly parallel). The caller copies what it remembers (an
admin dismissed or adopted the old cluster) onto the new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignment_core.risks.types import RiskCluster

MIN_OVERLAP = 0.5  # Jaccard index of the member sets
MIN_SIMILARITY = 0.9  # cosine of the request centroids


def carry_over(new: Sequence[RiskCluster], old: Sequence[RiskCluster],
               min_overlap: float = MIN_OVERLAP,
               min_similarity: float = MIN_SIMILARITY) -> dict[str, str]:
    """{new cluster id: old cluster id} for the pairs that are the same cluster; one-to-one,
    the closest pairs first (member overlap, then centroid similarity)."""
    candidates = []
    for n in new:
        members = set(n.member_ids)
        for o in old:
            overlap = len(members & set(o.member_ids)) / max(len(members | set(o.member_ids)), 1)
            similarity = (float(np.dot(n.centroid, o.centroid))
                          if n.centroid and len(n.centroid) == len(o.centroid) else 0.0)
            if overlap >= min_overlap or similarity >= min_similarity:
                candidates.append((-overlap, -similarity, n.id, o.id))
    matched: dict[str, str] = {}
    taken: set[str] = set()
    for _, _, new_id, old_id in sorted(candidates):
        if new_id not in matched and old_id not in taken:
            matched[new_id] = old_id
            taken.add(old_id)
    return matched
