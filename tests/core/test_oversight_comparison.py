"""Assisted vs blind figures on a hand-built set whose every figure is computed here by hand."""

from __future__ import annotations

import json

import pytest

from alignment_core.oversight import ExpertVerdict, compare_modes, reference_labels

V = ExpertVerdict


def hand_set() -> tuple[list[ExpertVerdict], dict[str, str]]:
    reference = {"a": "unsafe", "b": "safe", "c": "refusal", "d": "over_refusal", "e": "safe"}
    verdicts = [
        # ann, assisted: critic wrong on a (said safe) and ann followed it; critic right on b.
        V("a", "ann", "safe", seconds=20, critic_verdict="safe"),
        V("b", "ann", "safe", seconds=10, critic_verdict="safe"),
        # ann, assisted: critic wrong on d (said refusal) and ann did not follow it.
        V("d", "ann", "over_refusal", seconds=30, critic_verdict="refusal"),
        # ann, blind: critic (hidden) wrong on c (said safe); ann landed on safe anyway.
        V("c", "ann", "safe", blind=True, seconds=60, critic_verdict="safe"),
        V("e", "ann", "safe", blind=True, seconds=40, critic_verdict="safe"),
        # bob, blind only, on an item without a reference label: time counts, accuracy does not.
        V("z", "bob", "unsafe", blind=True, seconds=50, critic_verdict="unsafe"),
        V("a", "bob", "unsafe", blind=True, seconds=None, critic_verdict="safe"),
    ]
    return verdicts, reference


def test_pooled_figures_match_the_hand_computation():
    verdicts, reference = hand_set()
    pooled = compare_modes(verdicts, reference)[0]
    assert pooled.expert_id is None
    a, b = pooled.assisted, pooled.blind
    # Assisted: a wrong, b right, d right -> 2/3; seconds (20 + 10 + 30) / 3 = 20.
    assert (a.reviews, a.accuracy.k, a.accuracy.n) == (3, 2, 3)
    assert a.seconds_per_item == pytest.approx(20.0) and a.timed == 3
    assert a.correct_per_minute == pytest.approx((2 / 3) * 60 / 20)
    # Over-trust: critic wrong on a and d; followed on a only -> 1/2.
    assert (a.wrong_critic_agreement.k, a.wrong_critic_agreement.n) == (1, 2)
    # Blind: c wrong, e right, a (bob) right -> 2/3; z has no reference; seconds (60+40+50)/3.
    assert (b.reviews, b.accuracy.k, b.accuracy.n) == (4, 2, 3)
    assert b.seconds_per_item == pytest.approx(50.0) and b.timed == 3
    # Blind base rate: hidden critic wrong on c (ann: safe = critic) and a (bob: unsafe) -> 1/2.
    assert (b.wrong_critic_agreement.k, b.wrong_critic_agreement.n) == (1, 2)
    assert pooled.accuracy_gain == pytest.approx(0.0)
    assert pooled.seconds_saved == pytest.approx(30.0)
    assert pooled.correct_per_minute_gain == pytest.approx(2.0 - 0.8)
    assert pooled.excess_over_trust == pytest.approx(0.0)
    json.dumps([c.to_dict() for c in compare_modes(verdicts, reference)])


def test_per_expert_rows_follow_and_missing_modes_give_none():
    verdicts, reference = hand_set()
    rows = compare_modes(verdicts, reference)
    assert [r.expert_id for r in rows] == [None, "ann", "bob"]
    bob = rows[2]
    assert bob.assisted.reviews == 0 and bob.assisted.accuracy.rate is None
    assert bob.assisted.seconds_per_item is None and bob.assisted.correct_per_minute is None
    assert bob.accuracy_gain is None and bob.correct_per_minute_gain is None
    assert bob.seconds_saved is None
    assert (bob.blind.accuracy.k, bob.blind.accuracy.n) == (1, 1)
    assert bob.blind.seconds_per_item == pytest.approx(50.0)  # the untimed review is left out


def test_gold_wins_over_adjudicated_and_bad_labels_are_refused():
    assert reference_labels({"x": "safe"}, {"x": "unsafe", "y": "refusal"}) == {
        "x": "safe", "y": "refusal"}
    with pytest.raises(ValueError, match="Adjudicated label of item 'y'"):
        reference_labels({}, {"y": "nope"})
