"""Gold accuracy and its intervals, checked against independent computations (the Beta-quantile
definition of Clopper-Pearson, Wilson's closed formula and published values)."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import pytest
from scipy.stats import beta

from alignment_core.oversight import ExpertVerdict, gold_accuracy, proportion


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    a = 1 - confidence
    lo = 0.0 if k == 0 else beta.ppf(a / 2, k, n - k + 1)
    hi = 1.0 if k == n else beta.ppf(1 - a / 2, k + 1, n - k)
    return lo, hi


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (17, 20), (45, 60), (1, 200)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_intervals_match_independent_computations(k, n, confidence):
    cp = proportion(k, n, confidence=confidence, method="clopper-pearson")
    assert (cp.lo, cp.hi) == pytest.approx(clopper_pearson(k, n, confidence), abs=1e-9)
    wi = proportion(k, n, confidence=confidence, method="wilson")
    assert (wi.lo, wi.hi) == pytest.approx(wilson(k, n, confidence), abs=1e-9)
    assert cp.rate == wi.rate == k / n
    assert cp.lo <= k / n <= cp.hi


def test_clopper_pearson_published_values():
    # 0 of 10: the upper bound is 1 - 0.025 ** (1/10) = 0.3085 (the "rule of three" territory).
    assert proportion(0, 10).hi == pytest.approx(1 - 0.025 ** 0.1)
    # 8 of 10 at 95%: [0.4439, 0.9748] (the usual textbook table).
    p = proportion(8, 10)
    assert (round(p.lo, 4), round(p.hi, 4)) == (0.4439, 0.9748)


def test_proportion_refuses_nonsense_and_reports_no_data_as_none():
    assert proportion(0, 0).to_dict() == {"k": 0, "n": 0, "rate": None, "lo": None, "hi": None,
                                          "confidence": 0.95, "method": "clopper-pearson"}
    with pytest.raises(ValueError, match="0 <= k <= n"):
        proportion(5, 3)
    with pytest.raises(ValueError, match="Unknown interval method"):
        proportion(1, 2, method="wald")
    with pytest.raises(ValueError, match="confidence"):
        proportion(1, 2, confidence=1.0)


def test_gold_answers_are_scored_per_expert_and_gold_is_never_changed():
    gold = {"g1": "unsafe", "g2": "over_refusal", "g3": "safe"}
    before = dict(gold)
    verdicts = [
        ExpertVerdict("g1", "ann", "unsafe"), ExpertVerdict("g2", "ann", "refusal"),
        ExpertVerdict("g3", "ann", "safe", blind=True),
        ExpertVerdict("g1", "bob", "safe"),
        ExpertVerdict("x9", "bob", "safe"), ExpertVerdict("x9", "cy", "unsafe"),  # not gold
    ]
    scores = {s.expert_id: s for s in gold_accuracy(verdicts, gold)}
    assert sorted(scores) == ["ann", "bob"]  # cy answered no gold item: no row
    ann, bob = scores["ann"], scores["bob"]
    assert (ann.accuracy.k, ann.accuracy.n) == (2, 3)
    assert (ann.accuracy.lo, ann.accuracy.hi) == pytest.approx(clopper_pearson(2, 3, 0.95))
    assert ann.confusion == {"unsafe": {"unsafe": 1}, "over_refusal": {"refusal": 1},
                             "safe": {"safe": 1}}
    assert (bob.accuracy.k, bob.accuracy.n, bob.accuracy.rate) == (0, 1, 0.0)
    assert gold == before
    json.dumps([s.to_dict() for s in scores.values()])


def test_wilson_can_be_asked_for():
    verdicts = [ExpertVerdict(f"g{j}", "ann", "safe" if j < 40 else "unsafe") for j in range(50)]
    gold = {f"g{j}": "safe" for j in range(50)}
    [score] = gold_accuracy(verdicts, gold, method="wilson", confidence=0.9)
    assert score.accuracy.method == "wilson"
    assert (score.accuracy.lo, score.accuracy.hi) == pytest.approx(wilson(40, 50, 0.9))
