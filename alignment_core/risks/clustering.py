"""Group successful attacks: HDBSCAN finds dense groups, then groups about the same thing merge.

Each attack is a vector: its request beside its answer (vectors.combine). HDBSCAN (scikit-learn)
runs on a PCA reduction of those vectors; it needs no cluster count, and attacks that fit no
dense group stay noise. A campaign sends each goal many times, so a goal the attacker repeats is
a dense group of its own, while a risk nobody listed shows up as many different requests about
one theme, each asked a few times: on short requests MiniLM's similarities are modest, and
HDBSCAN alone tends to cut such a theme into several groups. Two steps from BERTopic's toolbox
follow: topic reduction (the two groups whose centroids are most alike merge, while their cosine
is at least `merge_similarity`; centroid linkage, so a tight group of repeats does not join a
broad theme just because it is broadly alike), then outlier reduction (a noise attack joins the
group whose centroid it is most alike, if that cosine is at least `assign_similarity`; BERTopic's
`reduce_outliers` assigns every outlier). HDBSCAN's own `cluster_selection_epsilon` would merge
inside the hierarchy, but raises a TypeError with NumPy 2 in scikit-learn 1.9 (issue 33219).
"""

from __future__ import annotations

import numpy as np

NOISE = -1


def reduce(vectors: np.ndarray, dimensions: int, seed: int) -> np.ndarray:
    """PCA to `dimensions` (at least 2, for the map), deterministic for the seed."""
    from sklearn.decomposition import PCA

    if vectors.shape[0] <= 2:
        return np.zeros((vectors.shape[0], 2))
    dimensions = max(2, min(dimensions, vectors.shape[0] - 1, vectors.shape[1]))
    reduced = PCA(n_components=dimensions, random_state=seed).fit_transform(vectors)
    return reduced.astype(np.float64)


def dense_groups(reduced: np.ndarray, min_cluster_size: int, min_samples: int) -> np.ndarray:
    """HDBSCAN labels (NOISE for none); all noise when there are too few points."""
    from sklearn.cluster import HDBSCAN

    if len(reduced) < max(min_cluster_size, 2):
        return np.full(len(reduced), NOISE)
    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min(min_samples, len(reduced)),
                   metric="euclidean", copy=True).fit_predict(reduced)


def merge_groups(vectors: np.ndarray, labels: np.ndarray, merge_similarity: float,
                 assign_similarity: float) -> np.ndarray:
    """Centroid-linkage merging, then outlier assignment (see the module docstring).

    `vectors` are unit vectors, one row per point. A group's centroid direction is the sum of its
    members, so merging two groups adds their sums and the loop keeps only a Gram matrix of sums.
    """
    labels = labels.copy()
    groups = sorted(set(labels.tolist()) - {NOISE})
    if not groups:
        return labels
    sums = np.stack([vectors[labels == g].sum(axis=0) for g in groups]).astype(np.float64)
    gram = sums @ sums.T  # kept up to date on each merge: (A + B) . C = A . C + B . C
    alive = np.ones(len(groups), dtype=bool)
    # 1. Merge the pair with the most alike centroids while their cosine reaches the threshold.
    while alive.sum() > 1:
        norms = np.sqrt(np.maximum(np.diag(gram), 1e-12))
        cosine = gram / np.outer(norms, norms)
        cosine[~alive, :] = -np.inf
        cosine[:, ~alive] = -np.inf
        np.fill_diagonal(cosine, -np.inf)
        a, b = np.unravel_index(int(np.argmax(cosine)), cosine.shape)
        if cosine[a, b] < merge_similarity:
            break
        a, b = min(a, b), max(a, b)  # the lower label survives, so the result is order-free
        self_a = gram[a, a] + 2 * gram[a, b] + gram[b, b]
        gram[a, :] += gram[b, :]
        gram[:, a] = gram[a, :]
        gram[a, a] = self_a
        sums[a] += sums[b]
        alive[b] = False
        labels[labels == groups[b]] = groups[a]
    # 2. Each noise point joins the group whose centroid it is most alike, if alike enough.
    kept = np.flatnonzero(alive)
    noise = np.flatnonzero(labels == NOISE)
    if len(noise):
        centroids = sums[kept] / np.linalg.norm(sums[kept], axis=1, keepdims=True)
        cosine = vectors[noise] @ centroids.T
        best = cosine.argmax(axis=1)
        chosen = cosine[np.arange(len(noise)), best] >= assign_similarity
        labels[noise[chosen]] = np.array(groups)[kept[best[chosen]]]
    return labels
