"""Training with each preference objective, example weights and point-wise (KTO) labels."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from alignment_core.training import Cancelled, PointwiseExample, TrainConfig
from alignment_core.training.config import OBJECTIVES
from alignment_core.training.preference import unpair

from .test_training import PAIRS, lora_weights, run


@pytest.mark.parametrize("objective", ["sigmoid", "robust", "ipo", "hinge", "kto"])
def test_every_objective_learns_to_prefer_the_chosen_responses(tmp_path, tiny_dir, objective):
    smoothing = 0.1 if objective in ("sigmoid", "robust") else 0.0
    config = TrainConfig(
        method="dpo", objective=objective, label_smoothing=smoothing, learning_rate=2e-2,
        epochs=8, batch_size=4, beta=1.0,
    )
    result, reports = run(tmp_path, tiny_dir, config, val_pairs=PAIRS)

    # KTO trains on both halves of each pair, so an epoch has twice the examples.
    assert len(reports) == (16 if objective == "kto" else 8)
    assert reports[-1].loss < reports[0].loss
    assert result.metrics["val_reward_accuracy"] == 1.0
    manifest = json.loads((result.adapter_dir / "superalign.json").read_text())
    assert manifest["config"]["objective"] == objective


def test_kto_starts_at_half_and_learns_from_pointwise_labels_alone(tmp_path, tiny_dir):
    examples = unpair(PAIRS)
    config = TrainConfig(method="dpo", objective="kto", learning_rate=2e-2, epochs=8, beta=1.0)
    result, reports = run(tmp_path, tiny_dir, config, pairs=[], pointwise=examples, val_pairs=PAIRS)

    # A fresh adapter is the reference, so every reward and z0 are 0: the loss is 1 - sigmoid(0).
    assert reports[0].loss == pytest.approx(0.5, abs=1e-4)
    assert reports[-1].loss < 0.45
    assert result.metrics["val_reward_accuracy"] == 1.0
    manifest = json.loads((result.adapter_dir / "superalign.json").read_text())
    assert manifest["num_pairs"] == 0 and manifest["num_pointwise"] == len(examples)


def test_examples_weighted_zero_leave_the_adapter_untouched(tmp_path, tiny_dir):
    zero = [dataclasses.replace(pair, weight=0.0) for pair in PAIRS]
    config = TrainConfig(method="dpo", learning_rate=2e-2, epochs=2, batch_size=2)
    weighted, _ = run(tmp_path, tiny_dir, dataclasses.replace(config, weight_examples=True),
                      name="weighted", pairs=zero)
    ignored, _ = run(tmp_path, tiny_dir, config, name="ignored", pairs=zero)

    lora_b = [w for name, w in lora_weights(weighted.adapter_dir).items() if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(w) == 0 for w in lora_b)  # fresh B is zero
    # With weighting off, the same weights are ignored and the adapter moves.
    moved = [w for name, w in lora_weights(ignored.adapter_dir).items() if "lora_B" in name]
    assert any(torch.count_nonzero(w) > 0 for w in moved)


def test_a_down_weighted_wrong_label_hurts_less(tmp_path, tiny_dir):
    # One pair's label is flipped; weighting it by a low confidence keeps its pull small.
    flipped = dataclasses.replace(PAIRS[0], chosen=PAIRS[0].rejected, rejected=PAIRS[0].chosen)
    config = TrainConfig(method="dpo", learning_rate=2e-2, epochs=6, batch_size=4, beta=1.0,
                         weight_examples=True)
    results = {}
    for weight in (1.0, 0.05):
        pairs = [dataclasses.replace(flipped, weight=weight), *PAIRS[1:]]
        result, _ = run(tmp_path, tiny_dir, config, name=f"w{weight}", pairs=pairs,
                        val_pairs=PAIRS[:1])
        results[weight] = result.metrics["val_reward_margin"]
    # val_reward_margin > 0 means the model prefers the pair's true chosen answer.
    assert results[0.05] > results[1.0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"objective": "dpo"}, "Unknown objective"),
        ({"label_smoothing": 0.5}, r"Label smoothing must lie in \[0, 0.5\)"),
        ({"label_smoothing": -0.1}, "Label smoothing must lie"),
        ({"objective": "ipo", "label_smoothing": 0.1}, "applies to the sigmoid and robust"),
    ],
)
def test_settings_no_run_can_use_are_refused_with_a_reason(tmp_path, tiny_dir, overrides, message):
    config = TrainConfig(method="dpo", **overrides)
    with pytest.raises(ValueError, match=message):
        run(tmp_path, tiny_dir, config)
    assert not (tmp_path / "run" / "adapter").exists()


def test_pointwise_labels_need_kto(tmp_path, tiny_dir):
    examples = [PointwiseExample(prompt="Hi", response="Hello!", desirable=True)]
    with pytest.raises(ValueError, match="need the kto objective"):
        run(tmp_path, tiny_dir, TrainConfig(method="dpo"), pointwise=examples)
    with pytest.raises(ValueError, match="at least two examples"):
        run(tmp_path, tiny_dir, TrainConfig(method="dpo", objective="kto"), pairs=[],
            pointwise=examples)


def test_the_new_settings_round_trip_and_default_to_todays_behaviour():
    config = TrainConfig(objective="robust", label_smoothing=0.2, weight_examples=True)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    default = TrainConfig()
    assert (default.objective, default.label_smoothing, default.weight_examples) == (
        "sigmoid", 0.0, False)
    assert set(OBJECTIVES) == {"sigmoid", "robust", "ipo", "hinge", "kto"}


def test_unpair_keeps_trls_order_and_the_pairs_weights():
    pairs = [dataclasses.replace(PAIRS[0], weight=0.5), PAIRS[1]]
    examples = unpair(pairs)
    assert [(e.response, e.desirable, e.weight) for e in examples] == [
        (PAIRS[0].chosen, True, 0.5), (PAIRS[1].chosen, True, 1.0),
        (PAIRS[0].rejected, False, 0.5), (PAIRS[1].rejected, False, 1.0),
    ]
    assert math.isclose(sum(e.weight for e in examples), 3.0)


def test_a_cancelled_weighted_kto_run_resumes_to_the_same_adapter(tmp_path, tiny_dir):
    pairs = [dataclasses.replace(pair, weight=w) for pair, w in zip(PAIRS, (1.0, 0.5, 0.8, 0.3))]
    config = TrainConfig(method="dpo", objective="kto", weight_examples=True, learning_rate=1e-2,
                         epochs=2, batch_size=2, checkpoint_every=100)
    straight, _ = run(tmp_path, tiny_dir, config, name="straight", pairs=pairs)

    stopped: list = []
    with pytest.raises(Cancelled):
        run(tmp_path, tiny_dir, config, name="stopped", pairs=pairs, progress=stopped.append,
            should_cancel=lambda: len(stopped) == 3)
    resumed, reports = run(tmp_path, tiny_dir, config, name="stopped", pairs=pairs)

    assert [r.step for r in reports] == list(range(4, 9))
    assert [r.loss for r in resumed.history] == pytest.approx(
        [r.loss for r in straight.history], abs=1e-5)
    a, b = lora_weights(straight.adapter_dir), lora_weights(resumed.adapter_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # Other weights are another run: its checkpoint must not be applied to them.
    other: list = []
    with pytest.raises(Cancelled):
        run(tmp_path, tiny_dir, config, name="other", pairs=pairs, progress=other.append,
            should_cancel=lambda: len(other) == 1)
    with pytest.raises(ValueError, match="belongs to a different run"):
        run(tmp_path, tiny_dir, config, name="other", pairs=PAIRS)
