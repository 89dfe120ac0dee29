"""Discover groups of successful attacks that no known category explains.

    discovery = discover(attacks)            # RiskAttack list in, Discovery out
    for cluster in discovery.clusters:       # highest novelty x weight x severity first
        print(cluster.name, cluster.size, cluster.novelty)

The steps (numbered in `discover`): keep the successful attacks; cut the attacker's frames and
encodings off the requests; embed requests and the opening words of answers with the bundled
MiniLM (each distinct text once); group the attacks (clustering.py: PCA, HDBSCAN, merging of
groups about the same thing); then describe each group: c-TF-IDF keywords, a name, its place on the 2-D map, its
novelty against the known categories, and a score. Everything is deterministic for the seed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from alignment_core.risks.clustering import NOISE, dense_groups, merge_groups, reduce
from alignment_core.risks.frames import readable, request_core
from alignment_core.risks.keywords import cluster_keywords
from alignment_core.risks.naming import Generate, name_clusters
from alignment_core.risks.novelty import CategoryCentroids, known_from_behaviours
from alignment_core.risks.types import (
    Discovery,
    DiscoveryConfig,
    MapPoint,
    RiskAttack,
    RiskCluster,
)
from alignment_core.risks.vectors import VectorCache, combine, embed_distinct, truncate_words

Progress = Callable[[str, int, int], None]  # (stage, done, total); may raise to cancel


def _bundled_known() -> dict[str, list[str]]:
    from alignment_core.attacker import behaviours

    return known_from_behaviours(behaviours())


def min_cluster_size(config: DiscoveryConfig, count: int) -> int:
    if config.min_cluster_size is not None:
        return max(2, config.min_cluster_size)
    return max(5, round(0.005 * count))


def _cluster_id(member_ids: Sequence[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(member_ids)).encode("utf-8")).hexdigest()
    return f"risk-{digest[:12]}"


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def discover(
    attacks: Sequence[RiskAttack],
    known: Mapping[str, Sequence[str]] | None = None,
    config: DiscoveryConfig | None = None,
    generate: Generate | None = None,
    cache: VectorCache | None = None,
    progress: Progress | None = None,
) -> Discovery:
    """Cluster the successful attacks and rank the clusters by novelty x weight x severity.

    `known`: category -> example requests (default: the attacker's seed behaviours; add the
    adopted categories' seeds). `generate`: a model that may name the clusters (see naming.py).
    `cache`: text hash -> vector, kept by the caller between runs. `progress(stage, done, total)`
    is called between stages and may raise to cancel.
    """
    config = config or DiscoveryConfig()
    known = _bundled_known() if known is None else {k: list(v) for k, v in known.items()}
    report = progress or (lambda stage, done, total: None)
    # 1. The successful attacks, in a fixed order so the result does not depend on the input's.
    rows = sorted((a for a in attacks if a.successful), key=lambda a: a.id)
    ids = [a.id for a in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("attack ids must be unique")
    if len(rows) < 2:
        return Discovery(clusters=[], points=[], considered=len(rows), noise=len(rows),
                         config=config)
    # 2. Requests without frames and encodings; answers cut to their opening words.
    report("prepare", 0, len(rows))
    cores = [request_core(a.attack) for a in rows]
    answers = [truncate_words(a.answer, config.answer_words) for a in rows]
    # 3. Embed each distinct text once: requests (with the category examples), then answers.
    examples = [(name, text) for name in sorted(known) for text in known[name]]
    report("embed", 0, 2)
    request_vectors = embed_distinct(cores + [text for _, text in examples], cache)
    report("embed", 1, 2)
    answer_vectors = embed_distinct(answers, cache)
    report("embed", 2, 2)
    example_vectors = request_vectors[len(rows):]
    # A request left encoded (leetspeak over base64, say) says nothing as text; its answer still
    # says what was asked about, so it stands in.
    legible = np.array([readable(core) for core in cores])
    requests = np.where(legible[:, None], request_vectors[: len(rows)], answer_vectors)
    # 4. Group: HDBSCAN, then merge groups about the same thing and place the noise.
    report("cluster", 0, 1)
    vectors = combine(requests, answer_vectors, config.answer_weight)
    reduced = reduce(vectors, config.reduce_to, config.seed)
    labels = dense_groups(reduced, min_cluster_size(config, len(rows)), config.min_samples)
    labels = merge_groups(vectors, labels, config.merge_similarity, config.assign_similarity)
    report("cluster", 1, 1)
    # 5. Describe every group; 6. name them and rank.
    points = reduced[:, :2]
    scale = max(float(np.abs(points).max()), 1e-12)  # the map spans -1..1
    known_vectors = {name: example_vectors[[k for k, (n, _) in enumerate(examples) if n == name]]
                     for name in known}
    centroids = CategoryCentroids(known_vectors)
    words = cluster_keywords([f"{c} {a}" for c, a in zip(cores, answers)], labels.tolist(),
                             top=config.keywords, skip=[NOISE])
    clusters = [_describe(np.flatnonzero(labels == label), rows, cores, requests, points / scale,
                          centroids, words.get(label, []), config)
                for label in sorted(set(labels.tolist()) - {NOISE})]
    by_id = dict(zip(ids, cores))
    names = name_clusters([c.keywords for c in clusters],
                          [[by_id[i] for i in c.example_ids] for c in clusters],
                          generate=generate, taken=sorted(known))
    for cluster, (name, named_by) in zip(clusters, names):
        cluster.name, cluster.named_by = name, named_by
    clusters.sort(key=lambda c: (-c.score, c.id))
    cluster_of = {i: c.id for c in clusters for i in c.member_ids}
    dots = [MapPoint(id=i, x=round(float(p[0]) / scale, 4), y=round(float(p[1]) / scale, 4),
                     cluster_id=cluster_of.get(i)) for i, p in zip(ids, points)]
    return Discovery(clusters=clusters, points=dots, considered=len(rows),
                     noise=int((labels == NOISE).sum()), config=config)


def _describe(members: np.ndarray, rows: Sequence[RiskAttack], cores: Sequence[str],
              requests: np.ndarray, points: np.ndarray, centroids: CategoryCentroids,
              keywords: list[str], config: DiscoveryConfig) -> RiskCluster:
    """One RiskCluster (unnamed yet) from the row indices of its attacks."""
    weights = np.array([rows[m].weight for m in members], dtype=np.float64)
    centre = _unit(requests[members].T @ weights)
    closeness = requests[members] @ centre
    # Most representative first: expert-confirmed (heavier) attacks, then the most central.
    order = sorted(range(len(members)),
                   key=lambda k: (-weights[k], -closeness[k], rows[members[k]].id))
    members, weights = members[order], weights[order]
    novelty, nearest = centroids.novelty(requests[members].T @ weights / weights.sum())
    filed = Counter(rows[m].category or "" for m in members)
    weight = float(weights.sum())
    severity = float(weights @ np.array([rows[m].severity for m in members]) / weight)
    seen, example_ids = set(), []
    for m in members:
        if cores[m] not in seen and len(example_ids) < config.examples:
            seen.add(cores[m])
            example_ids.append(rows[m].id)
    member_ids = [rows[m].id for m in members]
    position = points[members].mean(axis=0)
    return RiskCluster(
        id=_cluster_id(member_ids), name="", keywords=keywords, member_ids=member_ids,
        size=len(members), weight=round(weight, 4), severity=round(severity, 4),
        novelty=round(novelty, 4), nearest_category=nearest,
        score=round(novelty * weight * severity / 4.0, 4),
        position=(round(float(position[0]), 4), round(float(position[1]), 4)),
        example_ids=example_ids, centroid=[round(float(v), 6) for v in centre],
        filed_under=dict(sorted(filed.items(), key=lambda item: (-item[1], item[0]))))
