"""Learning from noisy preference labels: each objective at 0%, 20% and 40% flipped labels.

Real human-labelled pairs (PyRIT's harm-scorer sets: two answers to one harmful request, the
one human annotators scored less harmful preferred; see benchmarks/data/pyrit_harm_pairs) are
split by request into training and validation pairs. A seeded random share of the training
labels is flipped (the 20% flips are among the 40% ones); every objective then trains the same
number of steps, same batch, learning rate and LoRA, on the bundled SmolLM2-135M-Instruct, and
is scored by validation reward accuracy against the *clean* labels: the share of held-out pairs
whose chosen answer gets the higher implicit reward beta * log(pi / pi_ref).

Objectives (TrainConfig.objective): dpo (sigmoid), cdpo (sigmoid with label smoothing), robust,
ipo, hinge, kto (trained on both halves of each pair, unpaired). cdpo and robust take the noise
rate as their label smoothing, as an audit of the labels would estimate it; at 0% noise both
are DPO's loss (cdpo shares the dpo run; robust runs and must match it).

The label-source study trains on the same pairs labelled by the critic (`make_critic()` judges
both answers; the one it finds less likely unsafe is preferred, ties by a seeded coin) and by the
humans (the dpo run at 0% noise), and reports PGR = (acc_critic - 0.5) / (acc_human - 0.5):
an untrained implicit reward ranks at chance.

To fit a 2-core CPU, LoRA adapts the attention of the last few layers only (the backward pass
stops there) and pairs are cut to --max-length tokens (the first ~50 tokens of an answer show
whether it refuses or complies). The reference scores are cached across runs.

    .venv/bin/python benchmarks/noisy_labels.py [--steps 14] [--train-pairs 112] [--val-pairs 80]

The last line is one JSON object: pairs, steps, acc_<objective>_<percent>, pgr, and more.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO / "benchmarks" / "data" / "pyrit_harm_pairs" / "pairs.jsonl"
NOISE_RATES = (0, 20, 40)
# name -> (TrainConfig.objective, whether label smoothing is the noise rate)
OBJECTIVES = {
    "dpo": ("sigmoid", False),
    "cdpo": ("sigmoid", True),
    "robust": ("robust", True),
    "ipo": ("ipo", False),
    "hinge": ("hinge", False),
    "kto": ("kto", False),
}


def load_pairs() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


def split_by_prompt(rows: list[dict], val_share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Training and validation pairs with no request in common."""
    prompts = sorted({row["prompt"] for row in rows})
    random.Random(seed).shuffle(prompts)
    val_prompts = set(prompts[: round(val_share * len(prompts))])
    train = [row for row in rows if row["prompt"] not in val_prompts]
    val = [row for row in rows if row["prompt"] in val_prompts]
    return train, val


def flipped(pairs: list, rate: int, seed: int) -> list:
    """The pairs with a seeded `rate`% of labels swapped; a lower rate flips a subset."""
    order = list(range(len(pairs)))
    random.Random(seed + 1).shuffle(order)
    flip = set(order[: round(rate / 100 * len(pairs))])
    return [
        dataclasses.replace(p, chosen=p.rejected, rejected=p.chosen) if i in flip else p
        for i, p in enumerate(pairs)
    ]


def critic_labelled(pairs: list, seed: int) -> tuple[list, float]:
    """The pairs as the critic labels them, and the share where it agrees with the humans."""
    from alignment_core.critic import CritiqueInput, make_critic

    critic = make_critic()
    items = [CritiqueInput(query=p.prompt, response=r) for p in pairs for r in (p.chosen, p.rejected)]
    critiques = critic.critique(items)
    coin = random.Random(seed + 2)
    labelled, agree = [], 0
    for k, pair in enumerate(pairs):
        harm = [
            c.confidence if c.verdict == "unsafe" else 1.0 - c.confidence
            for c in critiques[2 * k : 2 * k + 2]
        ]
        keep = harm[0] < harm[1] or (harm[0] == harm[1] and coin.random() < 0.5)
        agree += keep
        labelled.append(pair if keep else dataclasses.replace(pair, chosen=pair.rejected, rejected=pair.chosen))
    return labelled, agree / len(pairs)


def lora_on_last_layers(model_dir: Path, layers: int):
    from alignment_core.training import LoraSettings

    total = json.loads((model_dir / "config.json").read_text())["num_hidden_layers"]
    modules = tuple(
        f"layers.{i}.self_attn.{name}"
        for i in range(total - layers, total)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj")
    )
    return LoraSettings(r=16, alpha=32, dropout=0.0, target_modules=modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-pairs", type=int, default=112)
    parser.add_argument("--val-pairs", type=int, default=80)
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lora-layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--noise", default=",".join(map(str, NOISE_RATES)))
    parser.add_argument(
        "--work-dir", type=Path, default=None,
        help="keep the reference cache and finished runs here: a rerun skips them, and several "
        "processes with other --objectives can share it (default: a fresh temporary folder)")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    noise_rates = [int(n) for n in args.noise.split(",")]

    from alignment_core.model_loader import ensure_bundled_cache
    from alignment_core.training import PreferencePair, TrainConfig, train
    from alignment_core.training.trainer import import_training_libraries

    started = time.perf_counter()
    import_training_libraries()
    model_dir = ensure_bundled_cache(REPO / "var" / "models")
    rows = load_pairs()
    train_rows, val_rows = split_by_prompt(rows, val_share=0.4, seed=args.seed)
    random.Random(args.seed).shuffle(train_rows)
    random.Random(args.seed).shuffle(val_rows)
    to_pair = lambda row: PreferencePair(row["prompt"], row["chosen"], row["rejected"])  # noqa: E731
    clean = [to_pair(row) for row in train_rows[: args.train_pairs]]
    val = [to_pair(row) for row in val_rows[: args.val_pairs]]
    print(f"{len(rows)} human-labelled pairs: {len(clean)} for training, {len(val)} held out "
          f"(different requests); {args.steps} steps of {args.batch}", flush=True)
    base = TrainConfig(
        method="dpo", lora=lora_on_last_layers(model_dir, args.lora_layers), learning_rate=args.lr,
        batch_size=args.batch, epochs=100, max_steps=args.steps, max_length=args.max_length,
        beta=args.beta, seed=args.seed, checkpoint_every=0, num_threads=args.threads,
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="noisy_labels_"))
    work.mkdir(parents=True, exist_ok=True)
    # A hash of (config, pairs) -> outcome, so no run repeats, within this process or across them.
    finished = work / "runs.jsonl"
    results: dict[str, dict] = {}
    used: set[str] = set()  # the runs this invocation reports
    if finished.exists():
        for line in finished.read_text().splitlines():
            results.update(json.loads(line))

    def run(objective: str, smoothing: float, pairs: list) -> dict:
        config = dataclasses.replace(base, objective=objective, label_smoothing=smoothing)
        key = hashlib.sha256(
            json.dumps([config.to_dict(), [dataclasses.asdict(p) for p in pairs]]).encode()
        ).hexdigest()
        used.add(key)
        if key not in results and finished.exists():  # another process may have finished it
            for line in finished.read_text().splitlines():
                results.update(json.loads(line))
        if key not in results:
            tick = time.perf_counter()
            out = work / key[:12]
            result = train(config, model_dir, pairs, [], out / "adapter", out / "ckpt",
                           val_pairs=val, reference_cache=work / "reference.sqlite3")
            seconds = time.perf_counter() - tick
            # The last steps' mean reward margin beta * (delta chosen - delta rejected): while it
            # stays far below 1 every pairwise loss is in its linear range, where DPO, conservative
            # and robust DPO push in the same direction and Adam's normalised steps make them equal.
            last = [r.reward_margin for r in result.history[-4:]]
            results[key] = {"acc": result.metrics["val_reward_accuracy"], "seconds": seconds,
                            "margin": sum(last) / len(last)}
            with finished.open("a") as handle:
                handle.write(json.dumps({key: results[key]}) + "\n")
            print(f"  {objective} (label smoothing {smoothing}): {seconds:.0f} s, validation reward "
                  f"accuracy {results[key]['acc']:.3f}, last training margin "
                  f"{results[key]['margin']:+.3f}", file=sys.stderr, flush=True)
        return results[key]

    summary: dict[str, float] = {"pairs": len(clean) + len(val), "train_pairs": len(clean),
                                 "val_pairs": len(val), "steps": args.steps}
    print(f"{'objective':<8} " + " ".join(f"{f'{rate}% flipped':>12}" for rate in noise_rates))
    for name in objectives:
        objective, smoothed = OBJECTIVES[name]
        cells = []
        for rate in noise_rates:
            outcome = run(objective, rate / 100 if smoothed else 0.0, flipped(clean, rate, args.seed))
            summary[f"acc_{name}_{rate}"] = round(outcome["acc"], 4)
            cells.append(f"{outcome['acc']:>7.3f} ({outcome['seconds']:>3.0f}s)")
        print(f"{name:<8} " + " ".join(cells), flush=True)

    # The label-source study on the same pairs: the critic's labels against the humans' (the
    # dpo run at 0% noise is its expert arm, so it runs with that one).
    if "dpo" in objectives and 0 in noise_rates:
        from alignment_core.label_study import StudyItem, build_arms, run_study

        critic_pairs, agreement = critic_labelled(clean, args.seed)
        items = [StudyItem(str(i), expert=h, critic=c) for i, (h, c) in enumerate(zip(clean, critic_pairs))]
        report = run_study(
            build_arms(items, mix_shares=()),
            train=lambda arm: run("sigmoid", 0.0, arm.pairs),
            evaluate=lambda outcome: {"reward_accuracy": outcome["acc"]},
            metric="reward_accuracy", lower_is_better=False, base_metrics={"reward_accuracy": 0.5},
        )
        summary["critic_agreement"] = round(agreement, 4)
        summary["acc_critic_labels"] = round(report.arm("critic").metrics["reward_accuracy"], 4)
        summary["pgr"] = None if report.pgr.value is None else round(report.pgr.value, 4)
        print(f"critic labels agree with the humans on {agreement:.1%} of the training pairs; "
              f"trained on them: {summary['acc_critic_labels']:.3f}, on the humans': "
              f"{report.arm('expert').metrics['reward_accuracy']:.3f}; PGR "
              f"{summary['pgr'] if report.pgr.value is not None else report.pgr.reason}")

    # The goal: at 40% noise the best noise-aware objective keeps >= 90% of its clean accuracy
    # and beats plain DPO by >= 5 points.
    if 40 in noise_rates and 0 in noise_rates and "dpo" in objectives:
        aware = [n for n in objectives if n != "dpo"]
        if aware:
            best = max(aware, key=lambda n: summary[f"acc_{n}_40"])
            kept = summary[f"acc_{best}_40"] / max(summary[f"acc_{best}_0"], 1e-9)
            lead = summary[f"acc_{best}_40"] - summary["acc_dpo_40"]
            summary.update(best_at_40=best, best_kept=round(kept, 4), best_lead_over_dpo=round(lead, 4))
            print(f"best at 40%: {best}, keeps {kept:.1%} of its clean accuracy, "
                  f"{100 * lead:+.1f} points over DPO")
    mine = [results[key] for key in used]
    summary["runs"] = len(mine)
    summary["max_abs_train_margin"] = round(max(abs(r["margin"]) for r in mine), 4)
    summary["train_minutes"] = round(sum(r["seconds"] for r in mine) / 60, 2)
    summary["minutes"] = round((time.perf_counter() - started) / 60, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
