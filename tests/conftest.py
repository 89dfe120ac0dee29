"""Fixtures shared by the whole suite: the real model (converted once) and a tiny random one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alignment_core.model_loader import ensure_bundled_cache, load_model, tiny_model_dir

# The services run's preflight and its per-session Redis database (see tests/services.py).
from tests.services import _rq_empty_queue, _rq_session_database, pytest_sessionstart  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
# The same cache as the app uses, so the 20 s GGUF conversion happens once per machine.
MODEL_CACHE = Path(os.environ.get("MODEL_CACHE_DIR", REPO / "var" / "models"))


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The bundled SmolLM2-135M-Instruct as a safetensors directory."""
    return ensure_bundled_cache(MODEL_CACHE)


@pytest.fixture(scope="session")
def tiny_dir(real_model_dir: Path) -> Path:
    """A tiny random Llama with the real SmolLM2 tokenizer: fast, same code paths."""
    return tiny_model_dir(real_model_dir, MODEL_CACHE / "tiny-random-llama")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_dir: Path):
    return load_model(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def real_loaded(real_model_dir: Path):
    return load_model(real_model_dir, device="cpu")


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Serve static files straight from the finders in tests (no collectstatic manifest needed)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness protects real passwords; tests only need a working hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
