"""Train a LoRA adapter from JSONL files, without the web app.

    python -m alignment_core.training --pairs pairs.jsonl --method dpo --out adapters/v2
    accelerate launch -m alignment_core.training --pairs pairs.jsonl --method dpo --out adapters/v2

Pairs are JSON lines with `prompt`, `chosen` and `rejected`; SFT examples have `prompt` and
`response` (or `completion`). A prompt is a string or a list of chat messages; a response may also
be given as a list of messages (TRL's conversational format), of which the last one counts.
Progress goes to stderr; the last line on stdout is one JSON object with the metrics and the
loss of every step. Under `accelerate launch` only the main process prints it (and writes the
adapter and the checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .config import Cancelled, PreferencePair, SFTExample, StepReport, TrainConfig
from .settings import add_arguments, check_values, config_from_values, settings_of, values_from_args


def _text(value: Any) -> str:
    """A response given as a string or as chat messages (the last message's content)."""
    if isinstance(value, list):
        return str(value[-1]["content"])
    return str(value)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{number}: not JSON ({error})") from error
    return rows


def read_pairs(path: Path) -> list[PreferencePair]:
    return [
        PreferencePair(prompt=r["prompt"], chosen=_text(r["chosen"]), rejected=_text(r["rejected"]))
        for r in read_jsonl(path)
    ]


def read_sft(path: Path) -> list[SFTExample]:
    return [
        SFTExample(prompt=r["prompt"], response=_text(r.get("response", r.get("completion"))))
        for r in read_jsonl(path)
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alignment_core.training",
        description="Fine-tune a LoRA adapter with SFT, DPO or SFT then DPO.",
    )
    parser.add_argument(
        "--pairs", type=Path, help="JSONL preference pairs (prompt, chosen, rejected)"
    )
    parser.add_argument("--sft", type=Path, help="JSONL SFT examples (prompt, response)")
    parser.add_argument("--val-pairs", type=Path, help="held-out JSONL preference pairs")
    parser.add_argument("--val-sft", type=Path, help="held-out JSONL SFT examples")
    parser.add_argument("--out", type=Path, required=True, help="adapter directory to create")
    parser.add_argument("--model-dir", help="base model directory (default: the bundled SmolLM2)")
    parser.add_argument(
        "--checkpoint-dir", type=Path, help="default: OUT with a .checkpoints suffix"
    )
    parser.add_argument(
        "--reference-cache",
        type=Path,
        help="SQLite file that keeps the base model's scores of pairs between runs, so a rerun "
        "on the same or a grown set scores only new pairs (default: score every pair)",
    )
    # Every setting TrainConfig declares (run and host settings alike).
    add_arguments(parser, settings_of(TrainConfig))
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from ..model_loader import BUNDLED, resolve_model_dir
    from .trainer import train

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.pairs and not args.sft:
        raise SystemExit("Give --pairs and/or --sft")
    settings = settings_of(TrainConfig)
    values = values_from_args(settings, args)
    errors = check_values(settings, values)
    if errors:
        parser.error("; ".join(f"{name}: {' '.join(found)}" for name, found in errors.items()))
    model_dir = resolve_model_dir(
        args.model_dir or os.environ.get("LEARNER_MODEL", BUNDLED),
        Path(os.environ.get("MODEL_CACHE_DIR", "var/models")),
        progress=lambda message: print(message, file=sys.stderr),
    )
    config = config_from_values(TrainConfig, values, meta={
        "source": "cli",
        "pairs_file": str(args.pairs or ""),
        "sft_file": str(args.sft or ""),
    })

    def show(report: StepReport) -> None:
        extra = (
            ""
            if report.reward_accuracy is None
            else (f" acc {report.reward_accuracy:.2f} margin {report.reward_margin:+.3f}")
        )
        print(
            f"[{report.phase}] step {report.step}/{report.total_steps} loss {report.loss:.4f}{extra} "
            f"{report.tokens_per_s:.0f} tok/s eta {report.eta_s:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    started = time.perf_counter()
    try:
        result = train(
            config,
            model_dir,
            read_pairs(args.pairs) if args.pairs else [],
            read_sft(args.sft) if args.sft else [],
            args.out,
            args.checkpoint_dir or args.out.with_name(args.out.name + ".checkpoints"),
            progress=show,
            val_pairs=read_pairs(args.val_pairs) if args.val_pairs else [],
            val_sft=read_sft(args.val_sft) if args.val_sft else [],
            log=lambda message: print(message, file=sys.stderr, flush=True),
            reference_cache=args.reference_cache,
        )
    except Cancelled as error:
        raise SystemExit(str(error)) from error
    seconds = time.perf_counter() - started
    # A short last batch counts as full; each step takes a batch from every process.
    examples = len(result.history) * config.batch_size * int(os.environ.get("WORLD_SIZE", "1"))
    summary = {
        "adapter_dir": str(result.adapter_dir),
        "steps": result.steps,
        "seconds": round(seconds, 2),
        # Examples (pairs or SFT examples) per second over the whole run, model loading included.
        "examples_per_s": round(examples / seconds, 3),
        "tokens_per_s": round(
            sum(r.tokens_per_s for r in result.history) / max(len(result.history), 1), 1
        ),
        **result.metrics,
        "loss_history": [report.loss for report in result.history],
    }
    if os.environ.get("RANK", "0") == "0":  # rank 0 of `accelerate launch`, or a lone process
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
