"""Sentence vectors for risk discovery, each distinct text embedded once.

MiniLM on two CPU cores is the slow part of discovery, so only what the method needs is
embedded: the request core of each successful attack (frames cut, so a campaign's thousands of
attacks shrink to its few hundred distinct requests) and the first `answer_words` words of each
answer (the opening says what the answer is about; long step lists add little but cost tokens).
Identical texts are embedded once, and a caller-owned cache keeps vectors between runs (the
after-campaign job re-clusters mostly the same attacks every time).
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence

import numpy as np

from alignment_core.embeddings import EMBED_DIM, embed

VectorCache = MutableMapping[str, np.ndarray]  # sha1 of the text -> its unit vector


def truncate_words(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) if parts else " "


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_distinct(texts: Sequence[str], cache: VectorCache | None = None) -> np.ndarray:
    """Unit vectors for `texts` (shape (len, 384)); each distinct text is embedded at most once."""
    keys = [_key(text) for text in texts]
    known: dict[str, np.ndarray] = {}
    if cache is not None:
        known.update((key, cache[key]) for key in set(keys) if key in cache)
    # 1. The distinct texts nobody embedded yet, in first-seen order (deterministic batches).
    missing = {key: text for key, text in zip(keys, texts) if key not in known}
    if missing:
        vectors = embed(list(missing.values()))
        for key, vector in zip(missing, vectors):
            known[key] = vector
            if cache is not None:
                cache[key] = vector
    if not keys:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    # 2. One row per input text, duplicates sharing their vector.
    return np.stack([known[key] for key in keys]).astype(np.float32)


def combine(requests: np.ndarray, answers: np.ndarray, answer_weight: float) -> np.ndarray:
    """The clustering vector: request and answer side by side, unit length overall.

    Concatenation (rather than a sum) keeps the two apart: the squared distance between two
    attacks is the request distance plus `answer_weight`² times the answer distance, so a shared
    generic answer ("Sure, here is how...") cannot make two unrelated requests look alike.
    """
    joined = np.concatenate([requests, answer_weight * answers], axis=1)
    norms = np.linalg.norm(joined, axis=1, keepdims=True)
    return joined / np.maximum(norms, 1e-12)
