"""The per-project head: the experts' decisions fine-tune the pretrained critic.

The head is a prior-centred multinomial logistic correction. The pretrained critic's four-way
log-probabilities enter as a fixed offset, and the head learns weights on a small feature vector
(the three factors' log-odds, the cues, and the item's words folded into a few hundred hashed
buckets) with an L2 penalty that pulls every weight back to zero, i.e. back to the pretrained
critic. With few labels the head barely moves it; with many it learns the project's own notion
of each verdict. Voter weights (votes.py) are learned the same way, pulled to their default.
The regularisation strength is picked by cross-validation on the project's own labels, and the
cross-validated predictions fit the confidence calibrator, so confidence stays a probability
of being right for this project. The whole state is a JSON-able dict (Project.critic_head).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from alignment_core.critic.base import VERDICTS, CritiqueInput
from alignment_core.critic.calibration import Calibrator, select_calibrator
from alignment_core.critic.factors import FACTORS, PretrainedCritic, load_pretrained, logit
from alignment_core.critic.features import HASH_FEATURES, Featurised, featurise
from alignment_core.critic.votes import DEFAULT_VOTER_WEIGHT, votes_tensor

MIN_EXAMPLES = 20  # below this many expert labels the pretrained critic alone is trusted
KIND = "prior-centred-v3"
FOLD_BUCKETS = 256  # hashed words per text block, folded down from HASH_FEATURES
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
CV_FOLDS = 5
MIN_CV = 40  # below this the default C is used and the calibrator stays the pretrained one
DEFAULT_C = 0.3


# Sums hashed columns into FOLD_BUCKETS buckets: a small, fixed-size view of the words.
_FOLDING = sparse.csr_matrix((np.ones(HASH_FEATURES), (np.arange(HASH_FEATURES),
                              np.arange(HASH_FEATURES) % FOLD_BUCKETS)),
                             shape=(HASH_FEATURES, FOLD_BUCKETS))


def _fold(x: sparse.csr_matrix) -> sparse.csr_matrix:
    return x @ _FOLDING


def head_features(feats: Featurised, base: PretrainedCritic,
                  items: list[CritiqueInput]) -> tuple[np.ndarray, np.ndarray]:
    """(offset log-probs (n, 4), features (n, d)) for a batch."""
    out = base.predict(feats, items)
    factors = np.stack([logit(out.harmful_request), logit(out.refuses),
                        logit(out.harmful_content)], axis=1) / 4.0
    # The request's meaning (MiniLM) lets a project teach which topics it counts as harmful.
    x = sparse.hstack([sparse.csr_matrix(factors), sparse.csr_matrix(feats.dense),
                       sparse.csr_matrix(feats.request_dense), sparse.csr_matrix(feats.request_sem),
                       _fold(feats.request), _fold(feats.opening), _fold(feats.novel)],
                      format="csr")
    return np.log(out.probabilities), np.asarray(x.todense())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_weights(offset: np.ndarray, x: np.ndarray, votes: np.ndarray, y: np.ndarray, C: float,
                 voter_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise cross-entropy + |W|^2/(2C) + |w_voters - prior|^2/(2C) with L-BFGS."""
    d, k = x.shape[1], len(VERDICTS)
    onehot = np.eye(k)[y]

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return theta[: k * d].reshape(k, d), theta[k * d : k * d + k], theta[k * d + k :]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b, wv = unpack(theta)
        p = _softmax(offset + x @ w.T + b + np.einsum("nmk,m->nk", votes, wv))
        g = p - onehot
        value = -np.sum(onehot * np.log(np.maximum(p, 1e-12)))
        value += (np.sum(w**2) + np.sum(b**2) + np.sum((wv - voter_prior) ** 2)) / (2 * C)
        grad_w, grad_b = g.T @ x + w / C, g.sum(axis=0) + b / C
        grad_v = np.einsum("nk,nmk->m", g, votes) + (wv - voter_prior) / C
        return value, np.concatenate([grad_w.ravel(), grad_b, grad_v])

    theta0 = np.concatenate([np.zeros(k * d + k), voter_prior])
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return unpack(result.x)


class LearnedHead:
    """Prior-centred correction of the pretrained critic, fitted on expert decisions."""

    def __init__(self, C: float | None = None) -> None:
        self.C = C  # None: chosen by cross-validation at fit time
        self.coef: np.ndarray | None = None  # (4, d)
        self.intercept: np.ndarray | None = None  # (4,)
        self.voters: dict[str, float] = {}  # learned voter weights
        self.calibrator = Calibrator()
        self.n_examples = 0
        self.label_counts: dict[str, int] = {}
        self.cv_accuracy: float | None = None
        self.base = ""  # the pretrained critic's fingerprint it corrects
        self.legacy = False  # loaded from an older head format and ignored

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    def fit(self, examples: list[tuple[CritiqueInput, str]],
            votes: list[dict[str, dict[str, float]]] | None = None) -> LearnedHead:
        """Fit on (critique input, expert verdict) pairs, optionally with each item's votes."""
        labels = [verdict for _, verdict in examples]
        unknown = set(labels) - set(VERDICTS)
        if unknown:
            raise ValueError(f"Unknown verdicts {sorted(unknown)}; expected {VERDICTS}")
        if len(set(labels)) < 2:
            raise ValueError("The head needs expert labels of at least two different verdicts")
        items = [item for item, _ in examples]
        base = load_pretrained()
        offset, x = head_features(featurise(items), base, items)
        names = sorted({name for by_voter in votes or [] for name in (by_voter or {})})
        v = votes_tensor(votes, names, len(items))
        y = np.array([VERDICTS.index(label) for label in labels])
        prior = np.full(len(names), DEFAULT_VOTER_WEIGHT)
        # 1. Pick C and collect out-of-fold predictions by cross-validation (enough labels only).
        self.C, oof = self._choose_c(offset, x, v, y, prior)
        # 2. Fit on everything with that C.
        w, b, wv = _fit_weights(offset, x, v, y, self.C, prior)
        self.coef, self.intercept = w, b
        self.voters = {name: float(wv[j]) for j, name in enumerate(names)}
        # 3. Calibrate confidence on the out-of-fold predictions (else keep the pretrained one).
        if oof is not None:
            self.cv_accuracy = float((oof.argmax(axis=1) == y).mean())
            self.calibrator = select_calibrator(oof.max(axis=1), oof.argmax(axis=1) == y)
        else:
            self.calibrator = base.calibrator
        self.n_examples, self.base = len(examples), base.fingerprint()
        self._fingerprint = None
        self.label_counts = {v: labels.count(v) for v in VERDICTS if v in labels}
        return self

    def _choose_c(self, offset: np.ndarray, x: np.ndarray, v: np.ndarray, y: np.ndarray,
                  prior: np.ndarray) -> tuple[float, np.ndarray | None]:
        if len(y) < MIN_CV:
            return (self.C or DEFAULT_C), None
        folds = np.arange(len(y)) % CV_FOLDS
        best = None
        for C in ([self.C] if self.C else C_GRID):
            oof = np.zeros((len(y), len(VERDICTS)))
            for f in range(CV_FOLDS):
                tr, te = folds != f, folds == f
                w, b, wv = _fit_weights(offset[tr], x[tr], v[tr], y[tr], C, prior)
                oof[te] = _softmax(offset[te] + x[te] @ w.T + b + np.einsum("nmk,m->nk", v[te], wv))
            score = np.mean(np.log(np.maximum(oof[np.arange(len(y)), y], 1e-12)))
            if best is None or score > best[0]:
                best = (score, C, oof)
        return best[1], best[2]

    def correction(self, offset: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The head's logits: offset + correction (no voters)."""
        return offset + x @ self.coef.T + self.intercept

    def predict_proba(self, items: list[CritiqueInput]) -> np.ndarray:
        """Probabilities over VERDICTS, shape (len(items), 4), without voters."""
        if not self.fitted:
            raise RuntimeError("The head is not fitted yet")
        offset, x = head_features(featurise(items), load_pretrained(), items)
        return _softmax(self.correction(offset, x))

    def predict(self, items: list[CritiqueInput]) -> list[str]:
        return [VERDICTS[k] for k in self.predict_proba(items).argmax(axis=1)]

    def to_dict(self) -> dict:
        """Plain lists and numbers only, so json.dumps works and Django can store it."""
        return {
            "kind": KIND, "verdicts": list(VERDICTS), "C": self.C, "base": self.base,
            "coef": np.round(self.coef, 6).tolist() if self.fitted else None,
            "intercept": np.round(self.intercept, 6).tolist() if self.fitted else None,
            "voters": {k: round(w, 6) for k, w in self.voters.items()},
            "calibrator": self.calibrator.to_dict(), "n_examples": self.n_examples,
            "label_counts": dict(self.label_counts), "cv_accuracy": self.cv_accuracy,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LearnedHead:
        """Load a stored head. A head of an older kind (MiniLM features) loads unfitted, so the
        critic falls back to the pretrained model until the next retrain; a head for another
        verdict set is an error."""
        if list(data.get("verdicts", VERDICTS)) != list(VERDICTS):
            raise ValueError("The stored head was trained for a different verdict set")
        head = cls(C=data.get("C"))
        head.n_examples = int(data.get("n_examples", 0))
        head.label_counts = dict(data.get("label_counts", {}))
        if data.get("kind") != KIND:
            head.legacy = True
            return head
        if data.get("coef") is not None:
            head.coef = np.asarray(data["coef"], dtype=np.float64)
            head.intercept = np.asarray(data["intercept"], dtype=np.float64)
        head.voters = {k: float(w) for k, w in (data.get("voters") or {}).items()}
        head.calibrator = Calibrator.from_dict(data.get("calibrator"))
        head.cv_accuracy = data.get("cv_accuracy")
        head.base = str(data.get("base", ""))
        return head

    def fingerprint(self) -> str:
        """A short hash of the weights, so a critique records which head produced it."""
        if getattr(self, "_fingerprint", None) is None:
            self._fingerprint = hashlib.sha256(
                json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return self._fingerprint


def train_head(examples: list[tuple[CritiqueInput, str]], min_examples: int = MIN_EXAMPLES,
               votes: list[dict[str, dict[str, float]]] | None = None) -> LearnedHead | None:
    """Fit a new head when there are enough expert decisions of at least two verdicts, else None.

    `votes`, when given, holds per example the stored votes of extra voters
    ({voter name: probabilities over VERDICTS}); their weights are then learned too.
    The Django side calls this after reviews accumulate and stores `head.to_dict()`.
    """
    if len(examples) < min_examples or len({verdict for _, verdict in examples}) < 2:
        return None
    return LearnedHead().fit(examples, votes)


__all__ = ["FACTORS", "MIN_EXAMPLES", "LearnedHead", "train_head"]
