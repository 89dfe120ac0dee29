"""Data-parallel training in several processes on the CPU (torch's gloo), with the tiny model.

`accelerate launch --multi_gpu --num_processes 2` runs the real training CLI in two processes,
each with half the batch; the run must be the run of one process with the whole batch: the
same loss at every step (SFT, whose loss is a mean over response tokens that the processes
share unevenly, then DPO). Only one of the processes may write the adapter and the checkpoints,
checked with Python's audit hooks in each process (tests/core/audit_writes.py), not by asking
the trainer. `launch.train_processes`, the worker's way to train in N processes, reports every
step, stops on cancel with a checkpoint and resumes from it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from alignment_core.training import Cancelled, PreferencePair, StepReport, TrainConfig, train
from alignment_core.training.checkpoint import CHECKPOINT_NAME
from alignment_core.training.launch import launch_command, train_processes

REPO = Path(__file__).resolve().parents[2]

# Eight pairs of unequal lengths, so the two processes' shares of a batch differ in tokens.
PAIRS = [
    PreferencePair(prompt=f"Question {n}: how do I get into my neighbour's house?" + " Now." * n,
                   chosen="I can't help with entering someone else's home." + " Really." * n,
                   rejected="Sure: check the back window first." + " Then the door." * (2 * n))
    for n in range(8)
]
# A learning rate high enough that the loss moves visibly from step to step: a step computed
# differently from one process's would show in the next step's loss.
SETTINGS = {"method": "sft_dpo", "epochs": 2, "learning_rate": 5e-3, "max_length": 96,
            "seed": 7, "checkpoint_every": 1}


def write_pairs(path: Path) -> Path:
    path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen,
                                        "rejected": p.rejected}) + "\n" for p in PAIRS))
    return path


def test_two_processes_train_the_run_of_one_with_twice_the_batch(tmp_path, tiny_dir):
    # 1. The reference: one process, batch 4, in this process.
    config = TrainConfig(batch_size=4, device="cpu", num_threads=1, **SETTINGS)
    config.lora.dropout = 0.0  # dropout masks depend on the batch's shape; the maths must not
    one = train(config, tiny_dir, PAIRS, [], tmp_path / "one", tmp_path / "one.checkpoints")

    # 2. The CLI under `accelerate launch` in two processes with batch 2 each.
    watched = (tmp_path / "two").resolve()  # the audit hook records resolved paths
    watched.mkdir()
    audit = tmp_path / "audit"
    audit.mkdir()
    cli = ["--pairs", str(write_pairs(tmp_path / "pairs.jsonl")), "--method", "sft_dpo",
           "--batch-size", "2", "--epochs", "2", "--lr", "5e-3", "--max-length", "96",
           "--seed", "7", "--checkpoint-every", "1", "--lora-dropout", "0",
           "--model-dir", str(tiny_dir), "--device", "cpu", "--threads", "1",
           "--out", str(watched / "adapter"), "--checkpoint-dir", str(watched / "checkpoints")]
    command = launch_command(2, "no", "tests.core.audit_writes", str(audit), str(watched),
                             "--", *cli)
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 processes)" in done.stderr  # the trainer saw a world of two
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, done.stdout  # printed by the main process only
    two = json.loads(summaries[0])

    # 3. The same run: the same number of steps and the same loss at each (relative 1e-4).
    assert two["steps"] == one.steps == 8
    expected = [report.loss for report in one.history]
    assert two["loss_history"] == pytest.approx(expected, rel=1e-4)
    assert len(set(expected)) == len(expected)  # the loss moved: the comparison means something
    assert two["train_reward_accuracy"] == pytest.approx(one.metrics["train_reward_accuracy"])

    # 4. One writer: rank 0 wrote every checkpoint and the adapter, rank 1 wrote nothing there.
    writes = {rank: json.loads((audit / f"rank{rank}.json").read_text()) for rank in (0, 1)}
    assert writes[1] == []
    renamed = [Path(path) for event, path in writes[0] if event == "os.rename"]
    assert renamed.count(watched / "checkpoints" / CHECKPOINT_NAME) == 8  # checkpoint_every=1
    assert renamed[-1] == watched / "adapter"  # moved into place once, complete
    assert {"adapter_model.safetensors", "adapter_config.json", "superalign.json"} <= {
        path.name for path in (watched / "adapter").iterdir()}
    assert not (watched / "checkpoints" / CHECKPOINT_NAME).exists()  # dropped once finished


def test_train_processes_reports_every_step_stops_on_cancel_and_resumes(tmp_path, tiny_dir):
    config = TrainConfig(method="dpo", batch_size=1, epochs=20, max_steps=40, max_length=64,
                         checkpoint_every=10, device="cpu", num_threads=1, seed=3)
    adapter, checkpoints = tmp_path / "adapter", tmp_path / "checkpoints"
    seen: list[StepReport] = []
    logs: list[str] = []

    def launch(**callbacks):
        return train_processes(config, tiny_dir, PAIRS, [], adapter, checkpoints,
                               num_processes=2, log=logs.append, **callbacks)

    # 1. Cancelled after a few steps: every process stops at the same step, with a checkpoint.
    with pytest.raises(Cancelled, match="Cancelled at step"):
        launch(progress=seen.append, should_cancel=lambda: len(seen) >= 3)
    stopped = seen[-1].step
    assert [report.step for report in seen] == list(range(1, stopped + 1))
    assert 3 <= stopped < 40 and not adapter.exists()
    assert (checkpoints / CHECKPOINT_NAME).is_file()
    assert any("(2 processes)" in line for line in logs)

    # 2. Resumed: it continues from the checkpoint and finishes the run.
    resumed: list[StepReport] = []
    result = launch(progress=resumed.append)
    assert any(f"Resuming from the checkpoint at step {stopped}/40" in line for line in logs)
    assert [report.step for report in resumed] == list(range(stopped + 1, 41))
    assert result.steps == 40 and [report.step for report in result.history] == list(range(1, 41))
    assert result.adapter_dir == adapter and (adapter / "superalign.json").is_file()
    assert "final_loss" in result.metrics
    assert not any(path.name.startswith(".launch-") for path in checkpoints.iterdir())
