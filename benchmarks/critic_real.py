"""Critic benchmark on real, human-labelled answers (data/critic, split "eval", never trained on).

    .venv/bin/python benchmarks/critic_real.py

1. Zero-shot: the layered critic without its language model and without a project head judges
   every eval answer: four-way accuracy, the refuse/comply call (binary), expected calibration
   error of its confidence, and items per second.
2. Auto-accept: the zero-shot critiques of 200 answers from the disjoint "finetune" split act as
   audits; the Clopper-Pearson threshold they support (target 95%) is applied to the eval split:
   the precision and share of what it would auto-accept.
3. Fine-tuned: a head trained on those 200 expert labels, then the eval split again.

The eval split's four-way labels are partly derived (see data/critic/PROVENANCE.md: refusal is
labelled by hand in PyRIT's refusal sets, by a frozen phrase rule elsewhere); the figures on the
hand-labelled subset alone are printed too. The last line is one JSON object: n, four_way_acc,
binary_acc, four_way_acc_after_200, ece, auto_accept_precision, auto_accept_share, items_s,
four_way_acc_hand_labelled, binary_acc_hand_labelled, items_cpu_s.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from alignment_core.critic import (
    LayeredCritic,
    auto_accept_threshold,
    expected_calibration_error,
    train_head,
)
from alignment_core.critic.data import load_answers
from alignment_core.critic.detectors import detect_refusal
from alignment_core.evaluation import score_critic

FINETUNE_LABELS = 200
TIMING_ROUNDS = 3


def judged(critic: LayeredCritic, rows) -> tuple[list, float, float]:
    """Critiques, items per wall-clock second, and items per CPU second (the latter holds up on
    a busy machine, where wall-clock time also counts other people's processes)."""
    items = [row.as_input() for row in rows]
    critic.critique(items[:8])  # warm-up: first-call imports and compiled patterns
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(TIMING_ROUNDS):
        critiques = critic.critique(items)
    n = TIMING_ROUNDS * len(items)
    return critiques, n / (time.perf_counter() - start), n / (time.process_time() - cpu)


def accuracy(critiques, rows) -> float:
    return float(np.mean([c.verdict == r.verdict for c, r in zip(critiques, rows)]))


def main() -> None:
    eval_rows = [r for r in load_answers("eval") if r.verdict]
    refusal_rows = [r for r in load_answers("eval") if r.refused is not None]
    pool = [r for r in load_answers("finetune") if r.verdict]
    audits = random.Random(0).sample(pool, FINETUNE_LABELS)

    # 1. Zero-shot.
    critic = LayeredCritic()
    critiques, items_s, items_cpu_s = judged(critic, eval_rows)
    four_way = accuracy(critiques, eval_rows)
    correct = [c.verdict == r.verdict for c, r in zip(critiques, eval_rows)]
    confidence = [c.confidence for c in critiques]
    ece = expected_calibration_error(confidence, correct)
    refusal_critiques = critic.critique([r.as_input() for r in refusal_rows])
    refused_pred = [c.verdict in ("refusal", "over_refusal") for c in refusal_critiques]
    binary = float(np.mean([p == r.refused for p, r in zip(refused_pred, refusal_rows)]))
    by_hand = [k for k, r in enumerate(refusal_rows) if r.refused_by == "human"]
    binary_human = float(np.mean([refused_pred[k] == refusal_rows[k].refused for k in by_hand]))
    phrases = float(np.mean([(detect_refusal(refusal_rows[k].response).score >= 0.5)
                             == refusal_rows[k].refused for k in by_hand]))
    human = [k for k, r in enumerate(eval_rows) if r.refused_by == "human"]
    scores = score_critic([c.verdict for c in critiques], [r.verdict for r in eval_rows])
    print(f"zero-shot: n={len(eval_rows)} four-way {four_way:.3f} (kappa {scores['kappa']:.3f}, "
          f"macro F1 {scores['macro_f1']:.3f}); on the {len(human)} hand-labelled-refusal rows "
          f"{np.mean([correct[k] for k in human]):.3f}; refuse/comply {binary:.3f} on "
          f"{len(refusal_rows)} ({binary_human:.3f} on the {len(by_hand)} refusals labelled by "
          f"hand, where a refusal-phrase matcher gets {phrases:.3f}); ECE {ece:.3f}; "
          f"{items_s:.0f} items/s ({items_cpu_s:.0f} per CPU second)")
    for verdict in ("safe", "unsafe", "refusal", "over_refusal"):
        rows = [k for k, r in enumerate(eval_rows) if r.verdict == verdict]
        print(f"  {verdict:>12}: n={len(rows):3d} recall {np.mean([correct[k] for k in rows]):.3f}")

    # 2. Auto-accept threshold from 200 audited zero-shot critiques of the finetune split.
    audited = critic.critique([r.as_input() for r in audits])
    threshold = auto_accept_threshold([c.confidence for c in audited],
                                      [c.verdict == r.verdict for c, r in zip(audited, audits)])
    if threshold.threshold is None:
        precision, share = None, 0.0
    else:
        accepted = [ok for ok, c in zip(correct, confidence) if c >= threshold.threshold]
        precision = float(np.mean(accepted)) if accepted else None
        share = len(accepted) / len(eval_rows)
    print(f"auto-accept: threshold {threshold.threshold} (bound {threshold.lower_bound}, "
          f"{threshold.correct_above}/{threshold.n_above} audits above); on eval precision "
          f"{precision}, share {share:.3f}")

    # 3. Fine-tuned on the 200 labels.
    start = time.perf_counter()
    head = train_head([(r.as_input(), r.verdict) for r in audits])
    train_s = time.perf_counter() - start
    tuned = LayeredCritic(head=head).critique([r.as_input() for r in eval_rows])
    after = accuracy(tuned, eval_rows)
    tuned_correct = [c.verdict == r.verdict for c, r in zip(tuned, eval_rows)]
    tuned_ece = expected_calibration_error([c.confidence for c in tuned], tuned_correct)
    print(f"fine-tuned on {FINETUNE_LABELS} labels in {train_s:.1f} s (C={head.C}, "
          f"cv accuracy {head.cv_accuracy:.3f}): four-way {after:.3f}, ECE {tuned_ece:.3f}")
    print(json.dumps({
        "n": len(eval_rows), "four_way_acc": round(four_way, 4), "binary_acc": round(binary, 4),
        "four_way_acc_after_200": round(after, 4), "ece": round(ece, 4),
        "auto_accept_precision": None if precision is None else round(precision, 4),
        "auto_accept_share": round(share, 4), "items_s": round(items_s, 1),
        "four_way_acc_hand_labelled": round(float(np.mean([correct[k] for k in human])), 4),
        "binary_acc_hand_labelled": round(binary_human, 4), "items_cpu_s": round(items_cpu_s, 1),
    }))


if __name__ == "__main__":
    main()
