"""Generation throughput: the same prompts answered one at a time and in batches.

Runs the real learner (the bundled SmolLM2-135M-Instruct unless --model-dir says otherwise) with
greedy decoding and min_new_tokens == max_new_tokens, so both modes generate exactly the same
number of tokens and tokens/s compare like with like. Only real generated tokens are counted
(Learner.tokens_generated excludes padding and anything after an end-of-sequence token).

    .venv/bin/python benchmarks/generation.py [--prompts 16] [--batch-size 16] [--new-tokens 48]

The last line is one JSON object: single_tok_s, batched_tok_s, ratio (and the settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alignment_core.attacker import behaviours
from alignment_core.learner import GenerationConfig, Learner
from alignment_core.model_loader import ensure_bundled_cache


def timed(learner: Learner, prompts: list[str], config: GenerationConfig) -> tuple[float, int]:
    """Seconds taken and real tokens generated for one generate() call."""
    before = learner.tokens_generated
    start = time.perf_counter()
    learner.generate(prompts, config)
    return time.perf_counter() - start, learner.tokens_generated - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()

    cache = Path(os.environ.get("MODEL_CACHE_DIR", Path(__file__).resolve().parent.parent / "var" / "models"))
    model_dir = args.model_dir or ensure_bundled_cache(cache)
    learner = Learner.from_dir(model_dir, device="cpu")
    # Red-team prompts of mixed length: harmful goals and benign twins from the seed set.
    seeds = behaviours()
    prompts = [(seed.goal if index % 2 == 0 else seed.benign_twin)
               for index, seed in enumerate(seeds[: args.prompts])]
    fixed = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}
    # Warm up once, so the one-time costs (first kernels, allocations) hit neither mode.
    learner.generate(prompts[:2], GenerationConfig(max_new_tokens=4, batch_size=2))

    single_s, single_tokens = timed(learner, prompts, GenerationConfig(batch_size=1, **fixed))
    batched_s, batched_tokens = timed(learner, prompts,
                                      GenerationConfig(batch_size=args.batch_size, **fixed))
    single = single_tokens / single_s
    batched = batched_tokens / batched_s
    print(f"one at a time: {single_tokens} tokens in {single_s:.1f} s = {single:.1f} tok/s")
    print(f"batch of {args.batch_size}: {batched_tokens} tokens in {batched_s:.1f} s = {batched:.1f} tok/s")
    print(f"ratio: {batched / single:.2f}x")
    print(json.dumps({
        "single_tok_s": round(single, 2), "batched_tok_s": round(batched, 2),
        "ratio": round(batched / single, 2), "prompts": len(prompts),
        "batch_size": args.batch_size, "new_tokens": args.new_tokens,
        "single_tokens": single_tokens, "batched_tokens": batched_tokens,
        "torch_threads": __import__("torch").get_num_threads(),
    }))


if __name__ == "__main__":
    main()
