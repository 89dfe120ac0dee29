"""Novelty: how far a cluster's requests lie from every known category.

A known category is defined by its example requests: the attacker's seed behaviours, plus the
seeds of every category adopted from an earlier cluster. Its centroid is the mean of those
request vectors (request space, because that is what the examples are: requests without
answers). The dot product of a cluster's centroid with a category's centroid is the mean cosine
similarity between the cluster's requests and the category's examples. Categories differ in
breadth ("self-harm" requests are far less alike than "misinformation" ones), so that mean is
measured against the category's own: the mean similarity between two of its examples. So

    novelty = 1 - max over categories of min(1, centroid . category centroid / within-category)

is 0 for a cluster as close to some category as that category's examples are to each other, and
approaches 1 for a cluster unlike anything known.

The categories the attacker filed the clustered attacks under are deliberately not used: they
say what an attack was meant to be about, not what it is about (an LM-written attack drifts,
an import carries another taxonomy), and a cluster's own members must not make it look familiar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from alignment_core.attacker.types import Behaviour


def known_from_behaviours(rows: Sequence[Behaviour]) -> dict[str, list[str]]:
    """Category -> the harmful requests (goals) of its behaviours, in file order."""
    known: dict[str, list[str]] = {}
    for row in rows:
        known.setdefault(row.category, []).append(row.goal)
    return known


class CategoryCentroids:
    """Per known category (sorted by name): the mean example vector and the mean similarity
    between two of its examples."""

    def __init__(self, examples: Mapping[str, np.ndarray]) -> None:
        self.names = sorted(name for name, vectors in examples.items() if len(vectors))
        groups = [np.asarray(examples[name], dtype=np.float64) for name in self.names]
        self.centroids = (np.array([g.mean(axis=0) for g in groups]) if groups
                          else np.zeros((0, 0)))
        within = [_within(g) for g in groups]
        measured = [w for w in within if w is not None]
        fallback = float(np.median(measured)) if measured else 1.0
        self.within = np.array([fallback if w is None else w for w in within])

    def novelty(self, centroid: np.ndarray) -> tuple[float, str | None]:
        """(novelty in 0..1, nearest category) of a cluster with this request centroid (the
        mean of its members' unit request vectors)."""
        if not self.names:
            return 1.0, None
        closeness = np.minimum(1.0, (self.centroids @ centroid) / self.within)
        nearest = int(np.argmax(closeness))
        return float(np.clip(1.0 - closeness[nearest], 0.0, 1.0)), self.names[nearest]


def _within(examples: np.ndarray) -> float | None:
    """Mean cosine between two different examples (None below two examples)."""
    count = len(examples)
    if count < 2:
        return None
    total = examples.sum(axis=0)
    return max(float((total @ total - np.einsum("ij,ij->", examples, examples))
                     / (count * (count - 1))), 1e-6)
