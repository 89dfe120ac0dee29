"""Train the shipped critic from the vendored public data, deterministically.

    .venv/bin/python -m alignment_core.critic.pretrain           # rewrite pretrained.json.gz
    .venv/bin/python -m alignment_core.critic.pretrain --check   # retrain in memory, compare

Only the "pretrain" split is read, so the "finetune" and "eval" splits stay unseen. Steps:
1. fit the three factor models (logistic regressions) on their labels;
2. cross-fit them by request group (5 folds) to get out-of-fold four-way predictions for the
   fully labelled pretraining answers, and fit the confidence calibrator on those (the method,
   none, Platt or isotonic, with the lowest cross-validated calibration error);
3. round the weights, write them, print the fingerprint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from alignment_core.critic.base import VERDICTS, CritiqueInput
from alignment_core.critic.calibration import (
    Calibrator,
    expected_calibration_error,
    select_calibrator,
)
from alignment_core.critic.data import LabelledAnswer, LabelledRequest, load_answers, load_requests
from alignment_core.critic.factors import (
    BLOCKS,
    FACTORS,
    PRETRAINED_PATH,
    REFIT_TOLERANCE,
    FactorModel,
    PretrainedCritic,
    design,
    n_features,
)
from alignment_core.critic.features import featurise, subset

C = {"harmful_request": 2.0, "harmful_request_sem": 1.0, "refuses": 1.0,
     "harmful_content": 0.5}  # inverse L2 strengths
# Human labels of the judgement itself count more than labels derived from them: PyRIT's refusal
# sets label refusal by hand (an off-topic answer counts as a refusal there), the other files'
# refusal labels come from a phrase rule; the objective and refusal files label whether the
# answer achieved the harmful goal, the harm files score harm whatever was asked.
WEIGHTS = {"human": 5.0, "rule": 1.0, "objective": 4.0, "refusal": 3.0, "harm": 0.3}
# The request model balances its classes (harmless requests are scarce in the public lists);
# the answer models keep the base rates their labels show.
BALANCED = {"harmful_request": True, "harmful_request_sem": True, "refuses": True,
            "harmful_content": True}
FOLDS = 5


@dataclass
class FactorData:
    """One factor's training rows: design matrix, labels, sample weights, request groups."""

    x: sparse.csr_matrix
    y: np.ndarray
    weight: np.ndarray
    groups: np.ndarray

    def without(self, held: set[str]) -> FactorData:
        keep = np.array([g not in held for g in self.groups], dtype=bool)
        return FactorData(self.x[keep], self.y[keep], self.weight[keep], self.groups[keep])


def _declines(response: str) -> bool:
    from alignment_core.critic.detectors import detect_refusal

    return detect_refusal(response).score >= 0.5


def _family(answer: LabelledAnswer) -> str:
    return answer.file.split("/")[0].replace("_scorer", "").replace("sample", "refusal")


def training_data(answers: list[LabelledAnswer],
                  requests: list[LabelledRequest]) -> dict[str, FactorData]:
    """Each factor's rows from the answers and request lists of one split, featurised once."""
    seen: set[str] = set()
    req = []  # (text, harmful, group)
    for text, harmful, group in ([(r.request, r.harmful, r.group) for r in requests]
                                 + [(a.request, a.request_harmful, a.group) for a in answers
                                    if a.request_harmful is not None]):
        if group not in seen:
            seen.add(group)
            req.append((text, bool(harmful), group))
    # PyRIT's annotators also call an answer that ignores a harmless request a "refusal"; the
    # critic does not (see factors.py), so those rows (hand-labelled refused, harmless request,
    # no refusal words) stay out of the refusal model's data rather than teach it a convention
    # it does not follow.
    off = [a for a in answers if a.refused_by == "human" and a.request_harmful is False
           and a.refused and not _declines(a.response)]
    ref = [a for a in answers if a.refused is not None and a not in off]
    con = [a for a in answers if a.harmful_content is not None]
    out = {}
    requests = [CritiqueInput(query=t, response="") for t, _, _ in req]
    for name, items, y, w, g in (
        ("harmful_request", requests, [h for _, h, _ in req], [1.0] * len(req),
         [grp for _, _, grp in req]),
        ("harmful_request_sem", requests, [h for _, h, _ in req], [1.0] * len(req),
         [grp for _, _, grp in req]),
        ("refuses", [a.as_input() for a in ref], [a.refused for a in ref],
         [WEIGHTS[a.refused_by] for a in ref], [a.group for a in ref]),
        ("harmful_content", [a.as_input() for a in con], [a.harmful_content for a in con],
         [WEIGHTS[_family(a)] for a in con], [a.group for a in con]),
    ):
        out[name] = FactorData(design(featurise(items), BLOCKS[name]), np.asarray(y, dtype=bool),
                               np.asarray(w, dtype=np.float64), np.asarray(g))
    return out


def _fit(name: str, data: FactorData) -> FactorModel:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C[name], class_weight="balanced" if BALANCED[name] else None, solver="liblinear",
                               max_iter=5000, tol=1e-6)
    model.fit(data.x, data.y, sample_weight=data.weight)
    return FactorModel.from_sklearn(name, model, n_features(BLOCKS[name]))


def fit_factors(data: dict[str, FactorData]) -> dict[str, FactorModel]:
    return {name: _fit(name, data[name]) for name in FACTORS}


def out_of_fold(answers: list[LabelledAnswer],
                data: dict[str, FactorData]) -> tuple[list[LabelledAnswer], np.ndarray]:
    """Four-way probabilities for each fully labelled answer from factors that never saw its group."""
    labelled = [a for a in answers if a.verdict]
    groups = sorted({a.group for a in labelled})
    fold_of = {g: k % FOLDS for k, g in enumerate(groups)}
    feats = featurise([a.as_input() for a in labelled])
    probs = np.zeros((len(labelled), len(VERDICTS)))
    for fold in range(FOLDS):
        held = {g for g, f in fold_of.items() if f == fold}
        factors = fit_factors({name: d.without(held) for name, d in data.items()})
        rows = np.array([k for k, a in enumerate(labelled) if a.group in held])
        critic = PretrainedCritic(factors, Calibrator())
        items = [labelled[k].as_input() for k in rows]
        probs[rows] = critic.predict(subset(feats, rows), items).probabilities
    return labelled, probs


def pretrain() -> tuple[PretrainedCritic, dict]:
    answers, requests = load_answers("pretrain"), load_requests("pretrain")
    start = time.perf_counter()
    data = training_data(answers, requests)
    factors = fit_factors(data)
    labelled, probs = out_of_fold(answers, data)
    gold = np.array([VERDICTS.index(a.verdict) for a in labelled])
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == gold
    calibrator = select_calibrator(confidence, correct)
    report = {
        "pretrain_answers": len(answers), "pretrain_requests": len(requests),
        "oof_n": len(labelled), "oof_four_way_acc": round(float(correct.mean()), 4),
        "oof_ece_raw": round(expected_calibration_error(confidence, correct), 4),
        "oof_ece_calibrated": round(expected_calibration_error(calibrator(confidence), correct), 4),
        "train_s": round(time.perf_counter() - start, 1),
    }
    meta = {"data": "data/critic (split pretrain)", "C": C, "folds": FOLDS,
            "oof_four_way_acc": report["oof_four_way_acc"], "n": report["oof_n"]}
    return PretrainedCritic(factors, calibrator, meta), report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the critic's pretrained factor models.")
    parser.add_argument("--check", action="store_true",
                        help="retrain in memory and compare with the shipped weights; exit 1 if any differs "
                             "by more than REFIT_TOLERANCE")
    args = parser.parse_args(argv)
    critic, report = pretrain()
    report["fingerprint"] = critic.fingerprint()
    if args.check:
        from alignment_core.critic.factors import load_pretrained

        shipped = load_pretrained()
        report["shipped"] = shipped.fingerprint()
        report["max_weight_difference"] = shipped.max_weight_difference(critic)
        print(json.dumps(report))
        return 0 if report["max_weight_difference"] <= REFIT_TOLERANCE else 1
    critic.save(PRETRAINED_PATH)
    report["path"] = str(PRETRAINED_PATH)
    report["bytes"] = PRETRAINED_PATH.stat().st_size
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
