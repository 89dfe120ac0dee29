"""Bridge from settings to alignment_core's model loader: the one place that knows where models are.

Jobs call `learner_model_dir()` and `learner_for(version)`; the model directory is resolved from
LEARNER_MODEL (converting the bundled GGUF once) and loaded models are cached per process, since
loading costs far more than generating a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from alignment_core.learner import Learner
from alignment_core.model_loader import load_model, resolve_model_dir


def learner_model_dir(base_model: str | None = None,
                      progress: Callable[[str], None] | None = None) -> Path:
    return resolve_model_dir(base_model or settings.LEARNER_MODEL, settings.MODEL_CACHE_DIR,
                             progress=progress)


@lru_cache(maxsize=2)
def _loaded(model_dir: str, adapter: str | None):
    return load_model(model_dir, adapter=adapter)


def loaded_model(base_model: str | None, adapter: Path | None = None) -> object:
    """The LoadedModel of a base model ("bundled", a directory; None: LEARNER_MODEL) with an
    optional LoRA adapter directory, cached per process."""
    return _loaded(str(learner_model_dir(base_model)), str(adapter) if adapter else None)


def loaded_for(version) -> object:
    """The LoadedModel (alignment_core.model_loader) for a LearnerVersion, cached per process."""
    return loaded_model(version.base_model, version.adapter_dir())


def local_learner(model: str) -> Learner:
    """An in-process generator for a local endpoint's model ("bundled" or a directory).

    `generator_for` would load the model on every call; this shares the per-process cache with
    the learner versions. Each call returns a fresh `Learner` (its own token count) on the
    cached weights.
    """
    return Learner(loaded_model(model))
