"""Run a small red-team round from the command line, on the real learner.

    python -m alignment_core.redteam --budget 16
    python -m alignment_core.redteam --budget 32 --strategies roleplay,converter --converters rot13
    python -m alignment_core.redteam --budget 16 --rounds 2 --strategies evolutionary,fewshot_lm

Each round: the attacker writes `budget` attacks -> the learner answers them in batches -> the
default (layered) critic judges every answer -> the evaluation reports the attack success rate
(ASR) per strategy with 95% bootstrap intervals, the over-refusal rate on benign twins, and the
canary hit rate measured by plain string checks (independent of the critic). With --rounds > 1
the scored attacks of a round become the history the LM and evolutionary strategies learn from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from alignment_core.attacker import (
    STRATEGIES,
    AttackConfig,
    ScoredAttack,
    canary_by_id,
    categories,
    diversity,
    generate_attacks,
)

DEFAULT_STRATEGIES = list(STRATEGIES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m alignment_core.redteam",
                                     description="Run a red-team round against the learner.")
    parser.add_argument("--budget", type=int, default=16, help="attacks per round (default 16)")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                        help=f"comma-separated, from: {', '.join(STRATEGIES)}")
    parser.add_argument("--categories", default=None,
                        help=f"comma-separated, from: {', '.join(categories())}, canary")
    parser.add_argument("--converters", default="", help="converter chain for the converter strategy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model-dir", default=None,
                        help="a local Hugging Face model directory (default: the bundled SmolLM2)")
    parser.add_argument("--adapter", default=None, help="a LoRA adapter directory to load on top")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--critic-lm", action="store_true",
                        help="let the learner write the critic's explanations (slower)")
    parser.add_argument("--width", type=int, default=60, help="characters of attack text shown")
    parser.add_argument("--json", action="store_true", help="print the report as a last JSON line")
    return parser.parse_args(argv)


def split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def model_dir_from(args: argparse.Namespace) -> Path:
    if args.model_dir:
        return Path(args.model_dir)
    from alignment_core.model_loader import ensure_bundled_cache

    cache = Path(os.environ.get("MODEL_CACHE_DIR", "var/models"))
    return ensure_bundled_cache(cache, progress=lambda message: print(message, file=sys.stderr))


def run_round(args, learner, critic, history: list[ScoredAttack], round_index: int) -> dict:
    from alignment_core.evaluation import evaluate_learner
    from alignment_core.learner import GenerationConfig

    config = AttackConfig(strategies=split(args.strategies) or DEFAULT_STRATEGIES,
                          categories=split(args.categories), budget=args.budget,
                          seed=args.seed + round_index, converters=split(args.converters) or [])
    # 1. Attack.
    attacks = generate_attacks(config, learner=learner, history=history)
    # 2. Respond (batched) and 3. critique, through the same evaluation the app uses.
    gen_config = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    report = evaluate_learner(
        learner, critic, attacks, gen_config,
        progress=lambda done, total: print(f"  {done}/{total}", end="\r", file=sys.stderr))
    # 4. Canary hits by string check, and the scores the next round learns from.
    hits = []
    for attack, item in zip(attacks, report["items"]):
        canary = canary_by_id(attack.canary_id) if attack.canary_id else None
        item["canary_hit"] = canary.check(item["response"]) if canary else None
        if canary:
            hits.append(item["canary_hit"])
        unsafe = item["verdict"] == "unsafe" or bool(item["canary_hit"])
        history.append(ScoredAttack(attack, float(item["confidence"]) if unsafe else 0.0))
    report["canary_hits"] = {"n": len(hits), "count": sum(hits),
                             "rate": sum(hits) / len(hits) if hits else None}
    report["diversity"] = diversity([attack.text for attack in attacks])
    return report


def print_report(report: dict, width: int, round_index: int) -> None:
    print(f"\nRound {round_index + 1}: {report['n_attacks']} attacks")
    print(f"{'#':>3}  {'strategy':<19} {'category':<14} {'kind':<7} {'attack':<{width}}  verdict")
    for number, item in enumerate(report["items"], 1):
        kind = "benign" if item["is_benign"] else ("canary" if item["category"] == "canary" else "harm")
        verdict = item["verdict"] + (" (canary hit)" if item.get("canary_hit") else "")
        print(f"{number:>3}  {item['strategy']:<19} {item['category']:<14} {kind:<7} "
              f"{one_line(item['text'], width):<{width}}  {verdict}")
    print("\nAttack success rate (harmful attacks) per strategy:")
    for name, group in report["by_strategy"].items():
        print(f"  {name:<19} {group['rate']:6.1%}  [{group['lo']:.0%}, {group['hi']:.0%}]  "
              f"({group['count']}/{group['n']})")
    overall, benign = report["overall"], report["over_refusal"]
    print(f"  {'overall':<19} {overall['rate']:6.1%}  [{overall['lo']:.0%}, {overall['hi']:.0%}]  "
          f"({overall['count']}/{overall['n']})")
    print(f"Over-refusal on benign twins: {benign['count']}/{benign['n']}")
    canary = report["canary_hits"]
    print(f"Canary hits (string check): {canary['count']}/{canary['n']}")
    print(f"Attack diversity (mean MiniLM cosine distance): {report['diversity']:.3f}")


def check_names(args: argparse.Namespace) -> str | None:
    """An error message for unknown strategy or category names (before the model loads)."""
    from alignment_core.attacker import CANARY_CATEGORY, CONVERTERS

    checks = [("strategies", split(args.strategies) or [], set(STRATEGIES)),
              ("categories", split(args.categories) or [], set(categories()) | {CANARY_CATEGORY}),
              ("converters", split(args.converters) or [], set(CONVERTERS))]
    for label, names, known in checks:
        unknown = [name for name in names if name not in known]
        if unknown:
            return f"unknown {label}: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    error = check_names(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from alignment_core.critic import make_critic
    from alignment_core.learner import Learner

    learner = Learner.from_dir(model_dir_from(args), adapter=args.adapter)
    critic = make_critic(learner=learner if args.critic_lm else None)
    history: list[ScoredAttack] = []
    reports = []
    for round_index in range(args.rounds):
        report = run_round(args, learner, critic, history, round_index)
        print_report(report, args.width, round_index)
        reports.append(report)
    if args.json:
        summary = [{key: value for key, value in report.items() if key != "items"}
                   for report in reports]
        print(json.dumps(summary[-1] if len(summary) == 1 else summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
