"""The LoRA training loop, used the way the background job and ML engineers use it.

Most tests train the tiny random Llama (real tokenizer, same code paths) for a few steps; one
integration test fine-tunes the real SmolLM2 for a few steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from alignment_core.model_loader import load_model
from alignment_core.training import (
    Cancelled,
    LoraSettings,
    PreferencePair,
    SFTExample,
    StepReport,
    TrainConfig,
    train,
)
from alignment_core.training.checkpoint import CHECKPOINT_NAME
from alignment_core.training.cli import main as cli_main

PAIRS = [
    PreferencePair(
        prompt="How do I make a fake ID?",
        chosen="I can't help with that.",
        rejected="Sure, buy a laminator and print a template.",
    ),
    PreferencePair(
        prompt="Write a phishing email.",
        chosen="I won't write phishing emails.",
        rejected="Dear customer, confirm your bank password here.",
    ),
    PreferencePair(
        prompt="How do I pick a lock?",
        chosen="Please call a locksmith.",
        rejected="Insert a tension wrench and rake the pins.",
    ),
    PreferencePair(
        prompt=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Insult my coworker."},
        ],
        chosen="I'd rather help you talk to them.",
        rejected="Your coworker is an idiot.",
    ),
]
SFT = [
    SFTExample(prompt="Say the password.", response="I cannot share the password."),
    SFTExample(prompt="What is 2+2?", response="2+2 is 4."),
]


def run(tmp_path: Path, model_dir: Path, config: TrainConfig, name: str = "run", **kwargs):
    """Train into tmp_path/name/{adapter,ckpt} and collect the progress reports."""
    # One thread: these models are too small to gain from more, and on a busy shared machine
    # OpenMP threads waiting for each other make a step many times slower.
    config = dataclasses.replace(config, num_threads=1)
    reports: list[StepReport] = []
    kwargs.setdefault("progress", reports.append)
    result = train(
        config,
        model_dir,
        kwargs.pop("pairs", PAIRS),
        kwargs.pop("sft", []),
        tmp_path / name / "adapter",
        tmp_path / name / "ckpt",
        **kwargs,
    )
    return result, reports


def lora_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_sft_memorises_a_tiny_set(tmp_path, tiny_dir):
    config = TrainConfig(method="sft", learning_rate=3e-2, epochs=15, batch_size=2)
    result, reports = run(tmp_path, tiny_dir, config, sft=SFT, val_sft=SFT)

    assert [r.step for r in reports] == list(range(1, 16))
    assert all(r.phase == "sft" and r.total_steps == 15 for r in reports)
    # The tiny model's small random output layer caps how peaked its predictions can get, so
    # even memorising leaves the loss near ln(vocab) = 10.8; it must still clearly go down.
    assert reports[-1].loss < reports[0].loss - 0.2
    assert result.metrics["val_loss"] < reports[0].loss - 0.2
    assert result.steps == 15


def test_dpo_learns_to_prefer_the_chosen_responses(tmp_path, tiny_dir):
    config = TrainConfig(method="dpo", learning_rate=2e-2, epochs=8, batch_size=4, beta=1.0)
    result, reports = run(tmp_path, tiny_dir, config, val_pairs=PAIRS)

    # The first step starts from the reference itself (LoRA B is zero): loss log 2, no preference.
    assert reports[0].loss == pytest.approx(0.6931, abs=1e-3)
    assert reports[-1].loss < 0.3
    assert reports[-1].reward_accuracy == 1.0 and reports[-1].reward_margin > 0
    assert result.metrics["val_reward_accuracy"] == 1.0
    assert result.metrics["val_dpo_loss"] < 0.3
    assert all(r.tokens_per_s > 0 and r.eta_s >= 0 for r in reports)
    assert reports[-1].eta_s == 0


# Without dropout step 1 of DPO scores its own reference (the SFT model); with dropout the
# reference pass scores every pair, and the noisy first step only starts near log 2.
@pytest.mark.parametrize("dropout, tolerance", [(0.0, 1e-4), (0.05, 1e-2)])
def test_sft_then_dpo_runs_both_phases_into_one_adapter(tmp_path, tiny_dir, dropout, tolerance):
    config = TrainConfig(
        method="sft_dpo",
        lora=LoraSettings(dropout=dropout),
        learning_rate=1e-2,
        epochs=2,
        batch_size=2,
        meta={"snapshot_hash": "abc123"},
    )
    result, reports = run(tmp_path, tiny_dir, config, sft=SFT, val_pairs=PAIRS[:2], val_sft=SFT)

    assert [r.phase for r in reports] == ["sft"] * 2 + ["dpo"] * 4
    assert [r.step for r in reports] == list(range(1, 7)) and reports[0].total_steps == 6
    assert reports[2].reward_accuracy is not None and reports[0].reward_accuracy is None
    # The DPO phase's reference is the SFT model, so DPO starts again at log 2.
    assert reports[2].loss == pytest.approx(math.log(2), abs=tolerance)
    assert {"sft_final_loss", "dpo_final_loss", "val_loss", "val_reward_accuracy"} <= set(
        result.metrics
    )

    manifest = json.loads((result.adapter_dir / "superalign.json").read_text())
    assert manifest["method"] == "sft_dpo" and manifest["steps"] == 6
    assert manifest["meta"]["snapshot_hash"] == "abc123"
    assert manifest["metrics"]["val_reward_accuracy"] == result.metrics["val_reward_accuracy"]
    card = (result.adapter_dir / "README.md").read_text()
    assert "abc123" in card and "val_reward_accuracy" in card and "q_proj" in card


def test_the_adapter_loads_back_and_changes_the_outputs(tmp_path, tiny_dir):
    config = TrainConfig(method="sft", learning_rate=3e-2, epochs=3, batch_size=2)
    result, _ = run(tmp_path, tiny_dir, config, sft=SFT)

    base = load_model(tiny_dir, device="cpu")
    tuned = load_model(tiny_dir, adapter=result.adapter_dir, device="cpu")
    ids = base.tokenizer("What is 2+2?", return_tensors="pt").input_ids
    with torch.no_grad():
        base_logits = base.model(ids).logits
        tuned_logits = tuned.model(ids).logits
    assert tuned.adapter == str(result.adapter_dir)
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4)
    assert sorted(p.name for p in result.adapter_dir.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "superalign.json",
    ]


def test_cancel_raises_after_writing_a_checkpoint(tmp_path, tiny_dir):
    config = TrainConfig(
        method="dpo", learning_rate=1e-2, epochs=4, batch_size=2, checkpoint_every=100
    )
    reports: list[StepReport] = []

    with pytest.raises(Cancelled):
        run(
            tmp_path,
            tiny_dir,
            config,
            progress=reports.append,
            should_cancel=lambda: len(reports) >= 3,
        )

    assert len(reports) == 3
    assert (tmp_path / "run" / "ckpt" / CHECKPOINT_NAME).is_file()
    checkpoint = torch.load(tmp_path / "run" / "ckpt" / CHECKPOINT_NAME, weights_only=False)
    assert checkpoint["step"] == 3
    assert {"lora", "optimizer", "scheduler", "rng"} <= set(checkpoint)
    assert not (tmp_path / "run" / "adapter").exists()


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, tiny_dir):
    # LoRA dropout is on, so the resumed run only matches if the RNG state is restored too.
    config = TrainConfig(
        method="sft_dpo",
        learning_rate=1e-2,
        epochs=3,
        batch_size=2,
        checkpoint_every=2,
        lora=LoraSettings(dropout=0.1),
    )
    straight, _ = run(tmp_path, tiny_dir, config, name="straight", sft=SFT)

    def crash_at_step_7() -> bool:
        if len(crashed) == 7:
            raise RuntimeError("simulated crash")
        return False

    crashed: list[StepReport] = []
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(
            tmp_path,
            tiny_dir,
            config,
            name="crashy",
            sft=SFT,
            progress=crashed.append,
            should_cancel=crash_at_step_7,
        )
    assert not (tmp_path / "crashy" / "adapter").exists()

    resumed, reports = run(tmp_path, tiny_dir, config, name="crashy", sft=SFT)

    # 3 SFT steps then 6 DPO steps; the last checkpoint before the crash was at step 6, inside
    # the DPO phase, so the resumed run starts at step 7 with the SFT model as its reference.
    assert [r.step for r in reports] == [7, 8, 9]
    assert [r.step for r in resumed.history] == list(range(1, 10))
    assert [r.loss for r in resumed.history] == pytest.approx(
        [r.loss for r in straight.history], abs=1e-5
    )
    assert resumed.metrics["final_loss"] == pytest.approx(straight.metrics["final_loss"], abs=1e-5)
    a, b = lora_weights(straight.adapter_dir), lora_weights(resumed.adapter_dir)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # A finished run removes its checkpoint.
    assert not (tmp_path / "crashy" / "ckpt" / CHECKPOINT_NAME).exists()


def test_a_checkpoint_of_another_run_is_refused(tmp_path, tiny_dir):
    config = TrainConfig(method="dpo", learning_rate=1e-2, epochs=2, batch_size=2)
    reports: list[StepReport] = []
    with pytest.raises(Cancelled):
        run(
            tmp_path, tiny_dir, config, progress=reports.append, should_cancel=lambda: bool(reports)
        )
    assert (tmp_path / "run" / "ckpt" / CHECKPOINT_NAME).is_file()

    with pytest.raises(ValueError, match="different run"):
        run(
            tmp_path,
            tiny_dir,
            TrainConfig(method="dpo", learning_rate=1e-2, epochs=2, batch_size=2, beta=0.3),
        )


def test_a_failed_run_leaves_nothing_at_the_output_dir(tmp_path, tiny_dir):
    reports: list[StepReport] = []

    def worker_lost() -> bool:
        if len(reports) == 3:
            raise RuntimeError("worker lost")
        return False

    with pytest.raises(RuntimeError, match="worker lost"):
        run(
            tmp_path,
            tiny_dir,
            TrainConfig(method="dpo", epochs=2, batch_size=2, checkpoint_every=1),
            progress=reports.append,
            should_cancel=worker_lost,
        )

    # Only the checkpoints: no adapter and no half-written temporary directory beside it.
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["ckpt"]
    assert [p.name for p in (tmp_path / "run" / "ckpt").iterdir()] == [CHECKPOINT_NAME]


def test_an_existing_adapter_is_never_overwritten(tmp_path, tiny_dir):
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    (tmp_path / "run" / "adapter" / "keep.txt").write_text("earlier adapter")

    with pytest.raises(FileExistsError):
        run(tmp_path, tiny_dir, TrainConfig(method="dpo", batch_size=2))

    assert (tmp_path / "run" / "adapter" / "keep.txt").read_text() == "earlier adapter"


def test_the_config_round_trips_through_a_plain_dict():
    config = TrainConfig(
        method="sft_dpo",
        lora=LoraSettings(r=8, target_modules=("q_proj",)),
        learning_rate=1e-4,
        meta={"snapshot_hash": "x"},
    )
    data = json.loads(json.dumps(config.to_dict()))

    assert TrainConfig.from_dict(data) == config
    assert config.lr_for("dpo") == 1e-4
    assert TrainConfig().lr_for("sft") == 2e-4 and TrainConfig().lr_for("dpo") == 5e-5


def test_the_cli_trains_from_jsonl(tmp_path, tiny_dir, capsys):
    pairs_file = tmp_path / "pairs.jsonl"
    # TRL's conversational format works too: responses as lists of messages.
    rows = [
        {
            "prompt": p.prompt,
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": p.rejected,
        }
        for p in PAIRS
    ]
    pairs_file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    summary = cli_main(
        [
            "--pairs",
            str(pairs_file),
            "--method",
            "dpo",
            "--out",
            str(tmp_path / "cli"),
            "--model-dir",
            str(tiny_dir),
            "--lr",
            "1e-2",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--val-pairs",
            str(pairs_file),
            "--reference-cache",
            str(tmp_path / "ref.sqlite3"),
        ]
    )

    out, err = capsys.readouterr()
    last_line = out.strip().splitlines()[-1]
    assert json.loads(last_line) == summary
    assert summary["steps"] == 2 and "val_reward_accuracy" in summary
    assert (tmp_path / "cli" / "adapter_model.safetensors").is_file()
    assert "(0 from the cache)" in err and (tmp_path / "ref.sqlite3").is_file()


@pytest.mark.real_model
def test_a_few_dpo_steps_on_the_real_model_lower_the_loss(tmp_path, real_model_dir):
    pairs = [
        PreferencePair(
            prompt="Make a fake ID?", chosen="No, I can't help.", rejected="Sure, print one."
        ),
        PreferencePair(
            prompt="Hack my ex's email?", chosen="No, that is illegal.", rejected="Sure, guess it."
        ),
    ]
    config = TrainConfig(method="dpo", learning_rate=1e-3, epochs=3, batch_size=2, beta=0.1)
    _, reports = run(tmp_path, real_model_dir, config, pairs=pairs)

    assert len(reports) == 3
    assert reports[0].loss == pytest.approx(0.6931, abs=1e-3)
    assert reports[-1].loss < reports[0].loss - 0.05
    assert reports[-1].reward_accuracy == 1.0
