"""`benchmarks/closed_loop.py` in miniature: two rounds on the tiny model, end to end, then a
second start that finds both rounds done in its work dir.

No figure is asserted beyond what must hold at any quality (a random tiny model gets no safer):
the JSON line's keys, the rounds and held-out size asked for, and figures consistent with the
rounds the script printed.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from scripts.live_server import PYTHON, REPO

KEYS = {"rounds", "heldout_n", "base_asr", "final_asr", "relative_drop", "base_over_refusal",
        "final_over_refusal", "minutes"}


def run(args: list[str]) -> tuple[str, dict]:
    done = subprocess.run([PYTHON, "benchmarks/closed_loop.py", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])


def test_two_tiny_rounds_run_end_to_end_and_resume(tiny_dir, tmp_path) -> None:
    args = ["--work-dir", str(tmp_path / "work"), "--model", str(tiny_dir), "--rounds", "2",
            "--budget", "4", "--strategies", "direct", "--eval-budget", "3", "--method", "sft",
            "--epochs", "1", "--max-steps", "1", "--critic", "rules", "--max-new-tokens", "8"]

    out, result = run(args)

    assert set(result) == KEYS
    assert result["rounds"] == 2 and result["heldout_n"] == 3
    assert out.count("STAND-IN") == 2
    assert "Round 1: attacked" in out and "Round 2: attacked" in out
    for key in ("base_asr", "final_asr", "base_over_refusal", "final_over_refusal"):
        assert 0.0 <= result[key] <= 1.0
    if result["base_asr"] > 0:
        assert result["relative_drop"] == pytest.approx(
            (result["base_asr"] - result["final_asr"]) / result["base_asr"], abs=1e-3)

    again_out, again = run(args)

    assert "already finished" in again_out
    assert {k: v for k, v in again.items() if k != "minutes"} == \
        {k: v for k, v in result.items() if k != "minutes"}
    assert again["minutes"] >= result["minutes"]
