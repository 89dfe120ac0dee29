"""The critic's statistics as the Django side calls them: calibration, auto-accept, informativeness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from alignment_core.critic import (
    Calibrator,
    audits_to_lower,
    auto_accept_threshold,
    expected_calibration_error,
    fit_calibrator,
    informativeness,
    reliability_bins,
    select_calibrator,
)
from alignment_core.critic.autoaccept import extra_correct_needed, precision_lower_bound


def overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences that claim more than they deliver: right with probability conf ** 3."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.4, 1.0, n)
    return conf, rng.uniform(size=n) < conf**3


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_shrinks_the_error_of_an_overconfident_critic(method: str):
    conf, correct = overconfident()
    before = expected_calibration_error(conf, correct)
    calibrator = fit_calibrator(conf[:1000], correct[:1000], method=method)
    after = expected_calibration_error(calibrator(conf[1000:]), correct[1000:])
    assert before > 0.1 and after < 0.05
    again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert np.allclose(again(conf[:50]), calibrator(conf[:50]), atol=1e-5)


def test_the_selected_calibrator_is_the_one_that_helps():
    conf, correct = overconfident()
    assert select_calibrator(conf, correct).method in ("platt", "isotonic")
    # Already calibrated confidences are best left alone.
    rng = np.random.default_rng(1)
    honest = rng.uniform(0.3, 1.0, 3000)
    assert select_calibrator(honest, rng.uniform(size=3000) < honest).method == "identity"


def test_too_little_or_one_sided_data_leaves_confidence_alone():
    assert fit_calibrator([0.9, 0.8], [True, False]).method == "identity"
    assert fit_calibrator([0.7] * 30, [True] * 30).method == "identity"
    assert Calibrator.from_dict(None)([0.3])[0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="same length"):
        fit_calibrator([0.5], [True, False])


def test_reliability_bins_count_every_item_once_and_report_accuracy():
    conf = [0.05, 0.15, 0.15, 0.95, 1.0]
    correct = [False, True, False, True, True]
    bins = reliability_bins(conf, correct, bins=10)
    assert sum(b.n for b in bins) == 5
    assert bins[1].n == 2 and bins[1].accuracy == 0.5 and bins[1].mean_confidence == pytest.approx(0.15)
    assert bins[9].n == 2 and bins[9].accuracy == 1.0  # 1.0 falls in the last bin
    assert bins[5].n == 0 and bins[5].accuracy is None
    # ECE by hand: 1/5 * |0 - .05| + 2/5 * |.5 - .15| + 2/5 * |1 - .975|
    assert expected_calibration_error(conf, correct) == pytest.approx(0.01 + 0.14 + 0.01)


def test_the_lower_bound_is_scipys_one_sided_clopper_pearson():
    for k, n in [(19, 20), (95, 100), (50, 50), (1, 3)]:
        expected = binomtest(k, n, alternative="greater").proportion_ci(0.95, "exact").low
        assert precision_lower_bound(k, n) == pytest.approx(expected, abs=1e-9)
    assert precision_lower_bound(0, 10) == 0.0 and precision_lower_bound(0, 0) == 0.0


def test_the_threshold_is_the_lowest_confidence_whose_bound_meets_the_target():
    # 100 audits at 0.99 all right, 100 at 0.8 with 10 wrong, 100 at 0.6 with 40 wrong.
    conf = [0.99] * 100 + [0.8] * 100 + [0.6] * 100
    correct = [True] * 100 + [True] * 90 + [False] * 10 + [True] * 60 + [False] * 40
    result = auto_accept_threshold(conf, correct, target=0.95)
    assert result.threshold == 0.99  # 100/100: bound 0.970; 190/200 above 0.8: bound 0.916
    assert result.n_above == 100 and result.correct_above == 100
    assert result.lower_bound == pytest.approx(precision_lower_bound(100, 100))
    assert auto_accept_threshold(conf, correct, target=0.9).threshold == 0.8


def test_no_threshold_until_the_audits_support_one_and_how_many_more_would():
    conf, correct = [0.97] * 20, [True] * 20
    result = auto_accept_threshold(conf, correct, target=0.95)
    assert result.threshold is None  # 20/20 gives a bound of 0.861 only
    lowering = audits_to_lower(conf, correct, target=0.95)
    need = lowering.more_correct_audits
    assert lowering.to == 0.97 and need == extra_correct_needed(20, 20, 0.95)
    assert precision_lower_bound(20 + need, 20 + need) >= 0.95
    assert precision_lower_bound(20 + need - 1, 20 + need - 1) < 0.95
    # With those audits added, the threshold exists.
    more = auto_accept_threshold(conf + [0.97] * need, correct + [True] * need)
    assert more.threshold == 0.97
    assert auto_accept_threshold([], []).threshold is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        auto_accept_threshold(conf, correct, target=1.5)


def test_informativeness_ranks_unsure_items_first():
    sure = informativeness([0.97, 0.01, 0.01, 0.01], harmful_request=0.99)
    torn = informativeness({"safe": 0.5, "unsafe": 0.5, "refusal": 0.0, "over_refusal": 0.0},
                           harmful_request=0.9)
    request_unsure = informativeness([0.45, 0.05, 0.45, 0.05], harmful_request=0.5)
    assert 0 <= sure < torn < request_unsure <= 1
    assert informativeness([0.25] * 4) == pytest.approx(1.0)
