"""The red-team CLI, run as a user runs it: `python -m alignment_core.redteam ...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def redteam(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alignment_core.redteam", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_a_budget_4_round_prints_attacks_verdicts_and_asr(tiny_dir: Path):
    result = redteam("--budget", "4", "--model-dir", str(tiny_dir), "--max-new-tokens", "8",
                     "--strategies", "direct,roleplay,converter,multi_turn", "--json")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Round 1: 4 attacks" in out
    rows = [line for line in out.splitlines() if line[:3].strip().isdigit()]
    assert len(rows) == 4
    assert all(any(verdict in row for verdict in ("safe", "unsafe", "refusal", "over_refusal"))
               for row in rows)
    assert "Attack success rate (harmful attacks) per strategy:" in out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n_attacks"] == 4
    assert set(report["by_strategy"]) <= {"direct", "roleplay", "converter", "multi_turn"}
    assert 0.0 <= report["overall"]["rate"] <= 1.0
    assert report["diversity"] > 0


def test_unknown_names_are_reported_before_loading_a_model():
    result = redteam("--budget", "4", "--strategies", "telepathy", "--model-dir", "/nonexistent")
    assert result.returncode == 2
    assert "unknown strategies: telepathy" in result.stderr


@pytest.mark.real_model
def test_real_model_smoke_round(real_model_dir: Path):
    # The default model: the bundled SmolLM2, found through the cache directory setting.
    result = redteam("--budget", "4", "--max-new-tokens", "24", "--seed", "1",
                     "--strategies", "direct,roleplay,fewshot_lm,evolutionary", "--json",
                     env={"MODEL_CACHE_DIR": str(real_model_dir.parent)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_attacks"] == 4
    assert report["overall"]["n"] + report["over_refusal"]["n"] == 4
