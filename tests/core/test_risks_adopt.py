"""Adopt closes the loop: a discovered cluster becomes seed behaviours the real attacker uses;
decisions carry over to the next discovery run."""

from __future__ import annotations

import json

import pytest

from alignment_core.attacker import AttackConfig, Behaviour, generate_attacks
from alignment_core.risks import Adoption, adopt_cluster, carry_over, discover
from alignment_core.risks.frames import canonical
from tests.core.risk_data import discovered, history, planted_requests


def canonical_text(text: str) -> str:
    return " ".join(canonical(word) for word in text.lower().split())


def _wildlife_cluster():
    discovery, _ = discovered()
    _, truth = history()
    return max(discovery.clusters,
               key=lambda c: sum(truth[i] == "wildlife_trafficking" for i in c.member_ids))


def test_adopt_turns_a_cluster_into_seed_behaviours():
    cluster = _wildlife_cluster()
    attacks, _ = history()
    adoption = adopt_cluster(cluster, attacks, category="wildlife_trafficking")
    assert adoption.category == "wildlife_trafficking" and adoption.cluster_id == cluster.id
    seeds = adoption.behaviours
    assert 1 <= len(seeds) <= 8
    assert [s.id for s in seeds] == [f"wildlife_trafficking-{k:02d}" for k in range(1, len(seeds) + 1)]
    # The goals are the members' requests without frames or encodings, each once.
    requests = set(planted_requests()["wildlife_trafficking"])
    assert sum(s.goal in requests for s in seeds) >= len(seeds) - 1
    assert len({canonical_text(s.goal) for s in seeds}) == len(seeds)  # no spelling variants
    assert all(1 <= s.severity <= 4 and s.benign_twin and s.category == adoption.category
               for s in seeds)
    assert adoption.source_ids and set(adoption.source_ids) <= set(cluster.member_ids)


def test_adopted_seeds_feed_the_attackers_next_round():
    adoption = adopt_cluster(_wildlife_cluster(), history()[0], category="wildlife_trafficking")
    config = AttackConfig(strategies=["direct", "roleplay", "converter"],
                          categories=[adoption.category], budget=6, seed=3,
                          benign_fraction=0.34, canary_fraction=0.0)
    attacks = generate_attacks(config, extra_behaviours=adoption.behaviours)
    assert len(attacks) == 6
    assert {a.category for a in attacks} == {adoption.category}
    seeds = {s.id: s for s in adoption.behaviours}
    for attack in attacks:
        seed = seeds[attack.behaviour_id]
        if attack.is_benign:
            assert attack.severity == 0
        elif attack.strategy != "converter":
            assert seed.goal in attack.text
    assert any(a.is_benign for a in attacks) and any(not a.is_benign for a in attacks)
    # Without a category filter the adopted category takes its turn beside the bundled ones.
    mixed = generate_attacks(AttackConfig(strategies=["direct"], budget=24, seed=1,
                                          canary_fraction=0.0, benign_fraction=0.0),
                             extra_behaviours=adoption.behaviours)
    assert adoption.category in {a.category for a in mixed}


def test_the_attacker_refuses_seeds_that_reuse_an_id():
    clash = Behaviour(id="cyber-01", category="new_topic", goal="How do I do a new thing?",
                      severity=2, benign_twin="What is the new thing?")
    with pytest.raises(ValueError, match="cyber-01"):
        generate_attacks(AttackConfig(strategies=["direct"], budget=2), extra_behaviours=[clash])


@pytest.mark.parametrize("category, message", [
    ("fraud", "exists already"),
    ("wildlife", "exists already"),
    ("!!", "not a usable category name"),
])
def test_adopt_refuses_a_bad_or_taken_category(category, message):
    with pytest.raises(ValueError, match=message):
        adopt_cluster(_wildlife_cluster(), history()[0], category=category, taken=["wildlife"])


def test_adopt_needs_the_members():
    cluster = _wildlife_cluster()
    attacks = [a for a in history()[0] if a.id != cluster.member_ids[0]]
    with pytest.raises(ValueError, match="not given"):
        adopt_cluster(cluster, attacks, category="wildlife_trafficking")


def test_adopt_defaults_to_the_clusters_name_and_round_trips_through_json():
    cluster = _wildlife_cluster()
    adoption = adopt_cluster(cluster, history()[0])
    assert adoption.category == cluster.name.replace(" / ", "_")
    assert Adoption.from_dict(json.loads(json.dumps(adoption.to_dict()))) == adoption


def test_decisions_carry_over_to_the_next_run():
    discovery, cache = discovered()
    assert carry_over(discovery.clusters, discovery.clusters) == {
        c.id: c.id for c in discovery.clusters}
    # The next run sees a tenth fewer attacks: the planted clusters are still recognised.
    attacks, truth = history()
    later = discover(attacks[: len(attacks) * 9 // 10], cache=cache)
    matched = carry_over(later.clusters, discovery.clusters)
    wildlife = _wildlife_cluster()
    assert wildlife.id in matched.values()
    successor = next(c for c in later.clusters if matched.get(c.id) == wildlife.id)
    assert sum(truth[i] == "wildlife_trafficking" for i in successor.member_ids) > successor.size / 2
    assert len(set(matched.values())) == len(matched)
