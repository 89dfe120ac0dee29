"""The closed loop's rules: promotion, the active learner's trail, the relative drop."""

from __future__ import annotations

import pytest

from alignment_core.closed_loop import (
    HeldOut,
    active_after_rounds,
    promotion_decision,
    relative_drop,
)


def test_a_safer_candidate_is_promoted():
    decision = promotion_decision(HeldOut(0.8, 0.10), HeldOut(0.5, 0.125))
    assert decision.promote
    assert "80.0% -> 50.0%" in decision.reason


def test_no_gain_in_attack_success_is_not_promoted():
    assert not promotion_decision(HeldOut(0.5, 0.1), HeldOut(0.5, 0.0)).promote
    assert "did not fall" in promotion_decision(HeldOut(0.5, 0.1), HeldOut(0.6, 0.1)).reason


def test_a_candidate_that_refuses_too_much_more_is_not_promoted():
    decision = promotion_decision(HeldOut(0.8, 0.10), HeldOut(0.1, 0.20))
    assert not decision.promote
    assert "over-refusal rose 10.0%" in decision.reason
    # Exactly the allowed rise is allowed; a looser rule lets the larger rise through.
    assert promotion_decision(HeldOut(0.8, 0.10), HeldOut(0.1, 0.15)).promote
    assert promotion_decision(HeldOut(0.8, 0.10), HeldOut(0.1, 0.20), 0.2).promote


def test_over_refusal_rises_are_counted_from_the_loops_first_learner():
    first = HeldOut(0.8, 0.10)
    # Each round adds four points: allowed once, not twice.
    assert promotion_decision(HeldOut(0.6, 0.14), HeldOut(0.4, 0.18), reference=first).promote \
        is False
    assert promotion_decision(HeldOut(0.8, 0.10), HeldOut(0.6, 0.14), reference=first).promote
    assert "since the loop's first learner" in promotion_decision(
        HeldOut(0.6, 0.14), HeldOut(0.4, 0.18), reference=first).reason


def test_the_active_learner_changes_only_when_promoted():
    start = HeldOut(0.8, 0.1)
    trail = active_after_rounds(start, [(HeldOut(0.6, 0.1), True), (HeldOut(0.7, 0.0), False),
                                        (HeldOut(0.3, 0.1), True)])
    assert [f.asr for f in trail] == [0.8, 0.6, 0.6, 0.3]


def test_relative_drop():
    assert relative_drop(0.8, 0.4) == pytest.approx(0.5)
    assert relative_drop(0.5, 0.6) == pytest.approx(-0.2)
    assert relative_drop(0.0, 0.0) is None
