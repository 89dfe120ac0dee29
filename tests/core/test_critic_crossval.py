"""Held-out figures of a per-project head (alignment_core.critic.crossval) on real labelled data."""

from __future__ import annotations

import pytest

from alignment_core.critic import VERDICTS
from alignment_core.critic.crossval import cross_validate_head
from alignment_core.critic.data import load_answers


@pytest.fixture(scope="module")
def examples():
    rows = [row for row in load_answers("finetune") if row.verdict][:45]
    return [(row.as_input(), row.verdict) for row in rows]


def test_every_decision_is_predicted_by_a_head_that_did_not_see_it(examples):
    scores = cross_validate_head(examples, C=0.3)
    assert scores.n == len(examples) == len(scores.confidence) == len(scores.correct)
    assert scores.accuracy == pytest.approx(sum(scores.correct) / scores.n)
    assert 0.0 <= scores.ece <= 1.0 and all(0.0 <= c <= 1.0 for c in scores.confidence)
    assert cross_validate_head(examples, C=0.3) == scores  # deterministic


def test_a_voter_that_knows_the_answer_raises_held_out_accuracy(examples):
    # Votes that put 0.9 on the expert's verdict: a useful judge, whose weight each fold learns.
    votes = [{"judge": {v: 0.9 if v == label else 0.1 / 3 for v in VERDICTS}}
             for _, label in examples]
    plain = cross_validate_head(examples, C=0.3)
    judged = cross_validate_head(examples, votes=votes, C=0.3)
    assert judged.accuracy > plain.accuracy
    assert judged.accuracy >= 0.85


def test_too_few_decisions_give_no_figures(examples):
    scores = cross_validate_head(examples[:9])
    assert (scores.n, scores.accuracy, scores.ece) == (0, None, None)
    with pytest.raises(ValueError, match="one entry per example"):
        cross_validate_head(examples, votes=[{}])
