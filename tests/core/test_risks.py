"""Risk discovery end to end on a small project history (tests/core/risk_data.py), with the
bundled MiniLM: planted groups are found, novelty ranks them first, runs are deterministic."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from alignment_core.learner import Learner
from alignment_core.risks import Discovery, DiscoveryConfig, RiskAttack, discover
from alignment_core.risks.naming import learner_generate, name_clusters
from alignment_core.risks.novelty import CategoryCentroids
from tests.core.risk_data import GROUPS, discovered, history


def _majority(cluster, truth: dict[str, str]) -> str:
    return Counter(truth[i] for i in cluster.member_ids).most_common(1)[0][0]


def _best_cluster(discovery: Discovery, truth: dict[str, str], group: str):
    """The cluster holding most of the group's attacks, with its precision and recall."""
    total = sum(1 for p in discovery.points if truth[p.id] == group)
    best = max(discovery.clusters, key=lambda c: sum(truth[i] == group for i in c.member_ids))
    overlap = sum(truth[i] == group for i in best.member_ids)
    return best, overlap / best.size, overlap / total


@pytest.mark.parametrize("group", GROUPS)
def test_discovery_finds_each_planted_group(group):
    discovery, _ = discovered()
    _, truth = history()
    _, precision, recall = _best_cluster(discovery, truth, group)
    assert precision >= 0.7
    assert recall >= 0.5


def test_novelty_ranks_the_uncovered_topics_above_the_known_ones():
    discovery, _ = discovered()
    _, truth = history()
    planted = [c for c in discovery.clusters if _majority(c, truth) != "ordinary"]
    ordinary = [c for c in discovery.clusters if _majority(c, truth) == "ordinary"]
    assert planted and ordinary
    assert min(c.novelty for c in planted) > max(c.novelty for c in ordinary)
    assert _majority(discovery.clusters[0], truth) != "ordinary"  # the Risks page's first row
    assert [c.score for c in discovery.clusters] == sorted((c.score for c in discovery.clusters),
                                                           reverse=True)


def test_novelty_is_zero_inside_a_category_and_one_far_from_all():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 16))
    fraud = base[0] + 0.3 * rng.normal(size=(5, 16))
    fraud /= np.linalg.norm(fraud, axis=1, keepdims=True)
    centroids = CategoryCentroids({"fraud": fraud})
    assert centroids.novelty(fraud[:2].mean(axis=0)) == (0.0, "fraud")
    unrelated = np.linalg.qr(np.stack([fraud.mean(axis=0), base[1]]).T)[0][:, 1]
    novelty, nearest = centroids.novelty(unrelated)
    assert novelty == pytest.approx(1.0) and nearest == "fraud"
    assert CategoryCentroids({}).novelty(unrelated) == (1.0, None)


def test_only_successful_attacks_are_clustered_and_confirmed_ones_lead():
    discovery, _ = discovered()
    attacks, _ = history()
    by_id = {a.id: a for a in attacks}
    clustered = {p.id for p in discovery.points}
    assert clustered == {a.id for a in attacks if a.successful}
    assert discovery.considered == len(clustered)
    for cluster in discovery.clusters:
        weights = [by_id[i].weight for i in cluster.member_ids]
        assert weights == sorted(weights, reverse=True)
        assert cluster.weight == pytest.approx(sum(weights))
        assert set(cluster.example_ids) <= set(cluster.member_ids)
        assert 0 <= cluster.severity <= 4 and 0 <= cluster.novelty <= 1
        assert -1 <= cluster.position[0] <= 1 and -1 <= cluster.position[1] <= 1
        assert sum(cluster.filed_under.values()) == cluster.size


def test_keywords_and_template_names_describe_the_planted_topics():
    discovery, _ = discovered()
    _, truth = history()
    wildlife, _, _ = _best_cluster(discovery, truth, "wildlife_trafficking")
    assert wildlife.named_by == "template"
    assert wildlife.name == " / ".join(wildlife.keywords[:3])
    topical = {"wild", "sell", "smuggle", "ivory", "rhino", "protected", "reserve", "pets",
               "customs", "birds", "songbirds", "eggs", "coral", "caviar", "catch", "trap"}
    assert topical & set(wildlife.keywords[:5])


def test_discovery_is_deterministic_and_independent_of_input_order():
    discovery, cache = discovered()
    attacks, _ = history()
    shuffled = list(attacks)
    random.Random(7).shuffle(shuffled)
    again = discover(shuffled, cache=cache)
    assert again.to_dict() == discovery.to_dict()


def test_a_discovery_survives_a_json_round_trip():
    discovery, _ = discovered()
    restored = Discovery.from_dict(json.loads(json.dumps(discovery.to_dict())))
    assert restored == discovery


def test_progress_reports_stages_and_can_cancel():
    _, cache = discovered()
    attacks, _ = history()
    stages = []
    discover(attacks[:60], cache=cache, progress=lambda stage, done, total: stages.append(stage))
    assert stages[0] == "prepare" and "embed" in stages and stages[-1] == "cluster"

    class Stop(Exception):
        pass

    def cancel(stage: str, done: int, total: int) -> None:
        if stage == "embed":
            raise Stop

    with pytest.raises(Stop):
        discover(attacks[:60], cache=cache, progress=cancel)


def test_bad_and_tiny_inputs():
    attack = RiskAttack(id="x", attack="How do I poach deer?", answer="Sure.", category=None,
                        verdict="unsafe", severity=2)
    with pytest.raises(ValueError, match="unique"):
        discover([attack, attack])
    empty = discover([attack], config=DiscoveryConfig())
    assert empty.clusters == [] and empty.considered == 1 and empty.noise == 1
    assert discover([]).clusters == []


def test_without_known_categories_every_cluster_is_new():
    _, cache = discovered()
    attacks, _ = history()
    discovery = discover(attacks[:120], known={}, cache=cache)
    assert discovery.clusters
    assert {(c.novelty, c.nearest_category) for c in discovery.clusters} == {(1.0, None)}


@pytest.fixture(scope="module")
def tiny_learner(tiny_loaded) -> Learner:
    return Learner(tiny_loaded)


def test_a_real_model_that_writes_nonsense_leaves_the_template_names(tiny_learner):
    discovery, _ = discovered()
    clusters = discovery.clusters[:3]
    names = name_clusters([c.keywords for c in clusters], [["example"] for _ in clusters],
                          generate=learner_generate(tiny_learner, max_new_tokens=8))
    assert names == [(" / ".join(c.keywords[:3]), "template") for c in clusters]
