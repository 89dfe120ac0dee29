"""The label-source study's arms and PGR, and the weights of label sources."""

from __future__ import annotations

import pytest

from alignment_core.label_study import (
    StudyItem,
    build_arms,
    performance_gap_recovered,
    run_study,
)
from alignment_core.training import PreferencePair
from alignment_core.training.label_sources import LABEL_SOURCES, example_weight


def items(n: int = 10) -> list[StudyItem]:
    out = []
    for i in range(n):
        expert = PreferencePair(f"request {i}", f"refusal {i}", f"compliance {i}")
        # The critic gets every third label backwards.
        critic = expert if i % 3 else PreferencePair(expert.prompt, expert.rejected, expert.chosen)
        out.append(StudyItem(key=f"k{i}", expert=expert, critic=critic, expert_minutes=0.5))
    return out


def test_arms_share_the_items_and_differ_only_in_whose_label_they_take():
    data = items()
    arms = {arm.name: arm for arm in build_arms(data, mix_shares=(0.3, 0.6), seed=1)}

    assert list(arms) == ["critic", "expert", "mix_30", "mix_60"]
    assert arms["critic"].pairs == [item.critic for item in data]
    assert arms["expert"].pairs == [item.expert for item in data]
    assert (arms["critic"].expert_minutes, arms["expert"].expert_minutes) == (0.0, 5.0)
    for name, n_expert in (("mix_30", 3), ("mix_60", 6)):
        arm = arms[name]
        assert arm.expert_labels == n_expert and arm.expert_minutes == pytest.approx(0.5 * n_expert)
        assert [p.prompt for p in arm.pairs] == [item.expert.prompt for item in data]
    # Nested draws: every item that takes the expert label at 30% still does at 60%.
    from_expert = {
        name: {i for i, item in enumerate(data) if arms[name].pairs[i] is item.expert and
               item.expert is not item.critic}
        for name in ("mix_30", "mix_60")
    }
    assert from_expert["mix_30"] <= from_expert["mix_60"]
    # The same seed draws the same mix; another seed may not.
    again = {arm.name: arm for arm in build_arms(data, mix_shares=(0.3,), seed=1)}
    assert again["mix_30"].pairs == arms["mix_30"].pairs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"items": []}, "needs items"),
        ({"mix_shares": (1.0,)}, "strictly between 0 and 1"),
        ({"mix_shares": (0.0,)}, "strictly between 0 and 1"),
    ],
)
def test_bad_study_input_is_refused(kwargs, message):
    arguments = {"items": items(), "mix_shares": (0.5,), **kwargs}
    with pytest.raises(ValueError, match=message):
        build_arms(arguments["items"], mix_shares=arguments["mix_shares"])


def test_duplicate_keys_are_refused():
    data = items(2)
    data[1].key = data[0].key
    with pytest.raises(ValueError, match="unique keys"):
        build_arms(data)


def test_pgr_for_attack_success_and_for_accuracy():
    # Attack success: base 0.8, critic-trained 0.6, expert-trained 0.4 -> half the gap.
    assert performance_gap_recovered(0.8, 0.6, 0.4, lower_is_better=True).value == pytest.approx(0.5)
    # Accuracy: chance 0.5, critic 0.65, expert 0.8 -> half the gap.
    assert performance_gap_recovered(0.5, 0.65, 0.8, lower_is_better=False).value == pytest.approx(0.5)
    # Weak labels that hurt give a negative PGR; better than the experts' above 1 (not clipped).
    assert performance_gap_recovered(0.8, 0.9, 0.4, lower_is_better=True).value == pytest.approx(-0.25)
    assert performance_gap_recovered(0.5, 0.9, 0.8, lower_is_better=False).value == pytest.approx(4 / 3)


@pytest.mark.parametrize(
    "strong, reason",
    [(0.81, "did not beat the base"), (0.8, "did not beat the base"), (0.79, "divide by noise")],
)
def test_pgr_is_undefined_when_the_experts_barely_beat_the_base(strong, reason):
    gap = performance_gap_recovered(0.8, 0.7, strong, lower_is_better=True, min_gap=0.02)
    assert gap.value is None and reason in gap.reason


def test_run_study_trains_and_evaluates_every_arm_once():
    data = items(9)
    trained = []

    def train(arm):
        trained.append(arm.name)
        # A stand-in learner: its attack success falls with the share of correct labels.
        right = sum(p.chosen.startswith("refusal") for p in arm.pairs) / len(arm.pairs)
        return {"attack_success": 1.0 - 0.6 * right}

    report = run_study(
        build_arms(data, mix_shares=(0.5,)), train, evaluate=lambda candidate: candidate,
        metric="attack_success", lower_is_better=True, base_metrics={"attack_success": 1.0},
    )
    assert trained == ["critic", "expert", "mix_50"]
    # The critic is right on 6 of 9 labels: 2/3 of the experts' gain.
    assert report.pgr.value == pytest.approx(2 / 3)
    assert report.arm("expert").pgr.value == pytest.approx(1.0)
    assert 2 / 3 <= report.arm("mix_50").pgr.value <= 1.0
    assert report.arm("expert").expert_minutes == pytest.approx(4.5)


def test_run_study_needs_the_metric_from_evaluate():
    with pytest.raises(KeyError, match="attack_success"):
        run_study(build_arms(items(3)), train=lambda arm: None, evaluate=lambda c: {"other": 1.0},
                  metric="attack_success", lower_is_better=True,
                  base_metrics={"attack_success": 1.0})


def test_example_weight_by_source_and_confidence():
    assert example_weight("expert_consensus") == 1.0
    assert example_weight("critic", 0.9) == pytest.approx(0.45)
    assert example_weight("single_expert") < example_weight("adjudicated")
    assert example_weight("critic", 0.8, {"critic": 1.0}) == pytest.approx(0.8)
    assert set(LABEL_SOURCES) == {"expert_consensus", "adjudicated", "single_expert", "critic"}
    with pytest.raises(ValueError, match="Unknown label source"):
        example_weight("crowd")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        example_weight("critic", 1.5)
