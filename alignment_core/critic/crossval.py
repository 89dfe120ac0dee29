"""How good a per-project head is on decisions it has not seen: cross-validate the whole fit.

A head picks its regularisation and fits its confidence calibrator on its own cross-validated
predictions (head.py). To measure the result, the same fit (head and calibrator) is repeated on
K-1 folds of the experts' decisions and judged on the K-th, so every decision is predicted by a
head that never saw it. The Django side records accuracy and expected calibration error at each
retrain (the learning curve) from these held-out predictions.

    scores = cross_validate_head(examples, votes=votes, C=head.C)
    scores.accuracy, scores.ece, scores.confidence, scores.correct
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alignment_core.critic.base import VERDICTS, CritiqueInput
from alignment_core.critic.calibration import expected_calibration_error
from alignment_core.critic.head import LearnedHead
from alignment_core.critic.votes import DEFAULT_VOTER_WEIGHT, vote_log_probs

FOLDS = 5

Votes = dict[str, dict[str, float]]


@dataclass
class HeadScores:
    """Held-out figures of a head fit; None when there were too few decisions to fold."""

    n: int  # decisions predicted by a head that did not see them
    accuracy: float | None
    ece: float | None
    confidence: list[float] = field(default_factory=list)  # calibrated, per predicted decision
    correct: list[bool] = field(default_factory=list)


def _blend(p: np.ndarray, weights: dict[str, float], votes: list[Votes]) -> np.ndarray:
    """Add the voters' log-probabilities with the head's learned weights (as the critic does)."""
    logits = np.log(np.maximum(p, 1e-12))
    for k, by_voter in enumerate(votes):
        for name, probabilities in (by_voter or {}).items():
            logits[k] += weights.get(name, DEFAULT_VOTER_WEIGHT) * vote_log_probs(probabilities)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def cross_validate_head(examples: list[tuple[CritiqueInput, str]],
                        votes: list[Votes] | None = None, folds: int = FOLDS,
                        C: float | None = None) -> HeadScores:
    """Fit a head on each K-1 folds, predict the held-out fold, and score the predictions.

    `C` fixes the regularisation (pass the full head's choice: searching it again in every
    fold would multiply the cost by the grid size). Folds are interleaved by position, so the
    result is deterministic for the same examples in the same order. A fold whose training
    part has a single verdict cannot be fitted; its decisions are left unscored.
    """
    n = len(examples)
    if n < 2 * folds:
        return HeadScores(n=0, accuracy=None, ece=None)
    votes = list(votes) if votes else [{} for _ in examples]
    if len(votes) != n:
        raise ValueError("votes must hold one entry per example")
    fold_of = np.arange(n) % folds
    labels = np.array([VERDICTS.index(verdict) for _, verdict in examples])
    confidence = np.full(n, np.nan)
    correct = np.zeros(n, dtype=bool)
    for f in range(folds):
        train = np.flatnonzero(fold_of != f)
        test = np.flatnonzero(fold_of == f)
        if len(set(labels[train].tolist())) < 2:
            continue
        head = LearnedHead(C=C).fit([examples[i] for i in train],
                                    [votes[i] for i in train] if any(votes) else None)
        p = head.predict_proba([examples[i][0] for i in test])
        p = _blend(p, head.voters, [votes[i] for i in test])
        confidence[test] = head.calibrator(p.max(axis=1))
        correct[test] = p.argmax(axis=1) == labels[test]
    scored = ~np.isnan(confidence)
    if not scored.any():
        return HeadScores(n=0, accuracy=None, ece=None)
    conf, right = confidence[scored], correct[scored]
    return HeadScores(n=int(scored.sum()), accuracy=float(right.mean()),
                      ece=expected_calibration_error(conf, right),
                      confidence=[round(float(c), 4) for c in conf],
                      correct=[bool(c) for c in right])
