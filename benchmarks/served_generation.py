"""Generation throughput in-process and through vLLM, alone and with 16 requests at once.

The same red-team prompts are answered by the in-process learner (batch 1 and batch 16) and by
a vLLM server started here from .venv-vllm (`make vllm`; 1 and 16 concurrent requests through
`RemoteGenerator`), greedy with min_new_tokens == max_new_tokens, so every mode generates the
same number of tokens. The in-process runs go first and the server starts after them, so the
two never share the CPU. Pass --base-url to measure a server you run yourself instead (its
model name with --served-name).

    .venv/bin/python benchmarks/served_generation.py [--prompts 16] [--new-tokens 48]

The last line is one JSON object: inprocess_tok_s_1, inprocess_tok_s_16, vllm_tok_s_1,
vllm_tok_s_16 and the ratios of vLLM over in-process at each level.
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
from alignment_core.endpoints import EndpointConfig, RemoteGenerator
from alignment_core.learner import GenerationConfig, Learner
from alignment_core.model_loader import resolve_model_dir
from scripts.vllm_server import REPO, VllmServer, stop_on_sigterm


def rate(generator, prompts: list[str], config: GenerationConfig) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds) for one generate() call, tokens as the generator counts them."""
    before = generator.tokens_generated
    start = time.perf_counter()
    generator.generate(prompts, config)
    seconds = time.perf_counter() - start
    tokens = generator.tokens_generated - before
    return tokens / seconds, tokens, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("LEARNER_MODEL", "bundled"))
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--base-url", default=None, help="an already running server's /v1 URL")
    parser.add_argument("--served-name", default="superalign")
    args = parser.parse_args()
    stop_on_sigterm()  # a `timeout` or Ctrl+C still stops the server we start

    cache = Path(os.environ.get("MODEL_CACHE_DIR", REPO / "var" / "models"))
    model_dir = resolve_model_dir(args.model, cache)
    seeds = behaviours()
    prompts = [(seed.goal if index % 2 == 0 else seed.benign_twin)
               for index, seed in enumerate(seeds[: args.prompts])]
    fixed = {"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens}
    figures: dict[str, float] = {}

    # 1. In-process: one prompt at a time, then one batch of all of them.
    learner = Learner.from_dir(model_dir)
    learner.generate(prompts[:2], GenerationConfig(max_new_tokens=4, batch_size=2))  # warm-up
    for level in (1, len(prompts)):
        tok_s, tokens, seconds = rate(learner, prompts,
                                      GenerationConfig(batch_size=level, **fixed))
        print(f"in-process, batch {level}: {tokens} tokens in {seconds:.1f} s = {tok_s:.1f} tok/s",
              flush=True)
        figures[f"inprocess_tok_s_{1 if level == 1 else 16}"] = round(tok_s, 2)
    del learner

    # 2. vLLM: the same prompts, 1 and then 16 requests in flight.
    server = None
    if args.base_url:
        base_url, name = args.base_url, args.served_name
    else:
        server = VllmServer(model_dir, served_name=args.served_name,
                            log_path=REPO / "var" / "served_generation_vllm.log")
        print(f"starting vLLM (log: {server.log_path}) ...", flush=True)
        started = time.perf_counter()
        server.start()
        print(f"vLLM ready after {time.perf_counter() - started:.0f} s", flush=True)
        base_url, name = server.base_url, server.served_name
    try:
        for level in (1, len(prompts)):
            endpoint = EndpointConfig(kind="openai", model=name, base_url=base_url,
                                      max_concurrency=level)
            generator = RemoteGenerator(endpoint)
            generator.generate(prompts[:2], GenerationConfig(max_new_tokens=4))  # warm-up
            tok_s, tokens, seconds = rate(generator, prompts, GenerationConfig(**fixed))
            print(f"vLLM, {level} concurrent: {tokens} tokens in {seconds:.1f} s = "
                  f"{tok_s:.1f} tok/s", flush=True)
            figures[f"vllm_tok_s_{1 if level == 1 else 16}"] = round(tok_s, 2)
    finally:
        if server is not None:
            server.stop()
    for level in (1, 16):
        figures[f"ratio_{level}"] = round(figures[f"vllm_tok_s_{level}"]
                                          / figures[f"inprocess_tok_s_{level}"], 2)
    print(json.dumps({**figures, "prompts": len(prompts), "new_tokens": args.new_tokens,
                      "load_average_1min": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
