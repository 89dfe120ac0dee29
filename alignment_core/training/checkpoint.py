"""Crash-safe checkpoints (a plain dict in one file) and the finished adapter directory.

Both are written next to their final place and renamed into it, so a crash at any moment leaves
either the previous complete file/directory or the new complete one, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"
ADAPTER_MANIFEST = "superalign.json"


def checkpoint_path(checkpoint_dir: Path) -> Path:
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def rng_state() -> dict[str, Any]:
    """Every random generator a step can consume (LoRA dropout draws from torch's)."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(checkpoint_dir: Path, state: dict[str, Any]) -> Path:
    """torch.save into a temporary file in the same directory, fsync, then os.replace."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(checkpoint_dir)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=checkpoint_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(checkpoint_dir: Path) -> dict[str, Any] | None:
    """The last complete checkpoint, or None when there is none."""
    path = checkpoint_path(checkpoint_dir)
    if not path.is_file():
        return None
    # weights_only=False: the dict holds Python RNG state and report dicts we wrote ourselves.
    return torch.load(path, map_location="cpu", weights_only=False)


def _model_card(manifest: dict[str, Any]) -> str:
    config = manifest["config"]
    lora = config["lora"]
    meta = manifest.get("meta") or {}
    rates = manifest["learning_rates"]
    lines = [
        "---",
        "library_name: peft",
        f"base_model: {manifest['base_model']}",
        "tags: [superalign, lora, " + manifest["method"].replace("_", "-") + "]",
        "---",
        "",
        f"# Superalign LoRA adapter ({manifest['method'].upper().replace('_', ' then ')})",
        "",
        f"Trained {manifest['created_at']} on top of `{manifest['base_model']}`.",
        "",
        f"- Dataset snapshot hash: `{meta.get('snapshot_hash', 'n/a')}`",
        f"- Preference pairs: {manifest['num_pairs']}, SFT examples: {manifest['num_sft']}",
        f"- Optimizer steps: {manifest['steps']}",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
        f"| method | {config['method']} |",
        f"| LoRA r / alpha / dropout | {lora['r']} / {lora['alpha']} / {lora['dropout']} |",
        f"| target modules | {', '.join(lora['target_modules'])} |",
        f"| learning rate (SFT / DPO) | {rates.get('sft', '-')} / {rates.get('dpo', '-')} |",
        f"| epochs | {config['epochs']} |",
        f"| batch size | {config['batch_size']} |",
        f"| max length | {config['max_length']} |",
        f"| beta | {config['beta']} |",
        f"| seed | {config['seed']} |",
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for name, value in sorted(manifest["metrics"].items()):
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    lines += [
        "",
        "Load it with `alignment_core.model_loader.load_model(base_model_dir, adapter=this_dir)`.",
        "",
    ]
    return "\n".join(lines)


def write_adapter(peft_model, output_dir: Path, manifest: dict[str, Any]) -> Path:
    """Save LoRA weights, README.md and superalign.json into output_dir, all or nothing.

    1. Write everything into a hidden temporary directory beside output_dir (same filesystem).
    2. os.replace it into place: the adapter appears complete or not at all.
    """
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(
            f"Adapter directory {output_dir} already exists; refusing to overwrite it"
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    manifest = dict(manifest, created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        peft_model.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(_model_card(manifest), encoding="utf-8")
        (tmp / ADAPTER_MANIFEST).write_text(
            json.dumps(manifest, indent=2, default=str), encoding="utf-8"
        )
        os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output_dir


CHECKPOINT_FORMAT = 1


def run_fingerprint(config: Any, model_dir: Path, data: dict) -> str:
    """A hash of everything that decides the result, so a checkpoint is never applied to another run."""
    settings = config.to_dict()
    for key in ("meta", "checkpoint_every", "device", "num_threads"):
        settings.pop(key)
    blob = json.dumps(
        {"settings": settings, "model": Path(model_dir).name, "data": data}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()
