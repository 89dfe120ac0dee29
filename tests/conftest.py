"""Fixtures shared by the whole suite: the models (the real one converted once, a tiny random one)
and the project with its members that most tests start from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from alignment_core.model_loader import ensure_bundled_cache, load_model, tiny_model_dir
from annotator.learner_runtime import _loaded
from annotator.models import Role
from annotator.services.snapshots import snapshot_create
from annotator.services.training import TrainingSettings, training_launch
from tests.factories import add_member, make_project

# The services run's preflight, its per-session Redis database and its PostgreSQL test
# database without autovacuum (see tests/services.py).
from tests.services import (  # noqa: F401
    _rq_empty_queue,
    _rq_session_database,
    django_db_setup,
    pytest_sessionstart,
)

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


@pytest.fixture
def tiny(settings, tiny_dir):
    """Campaigns answer with the tiny random model, in small batches and short answers.

    Most tests use the "rules" critic (the layered critic's detectors and rules, without the LM
    writer) to stay fast; a test that needs the LM writer sets CAMPAIGN_CRITIC = "layered".
    """
    settings.LEARNER_MODEL = str(tiny_dir)
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_MAX_NEW_TOKENS = 8
    settings.CAMPAIGN_CRITIC = "rules"
    _loaded.cache_clear()
    yield tiny_dir
    _loaded.cache_clear()


# -- the people and the project most tests start from (a test module overrides `project` when it
# needs one with data or other settings; the members below then join that one) ---------------


@pytest.fixture
def project():
    return make_project()


@pytest.fixture
def admin(project):
    return add_member(project, Role.ADMIN)


@pytest.fixture
def expert(project):
    return add_member(project, Role.EXPERT)


@pytest.fixture
def viewer(project):
    return add_member(project, Role.VIEWER)


@pytest.fixture
def outsider():
    """An admin of another project."""
    return add_member(make_project(), Role.ADMIN)


@pytest.fixture
def api():
    """A DRF test client (authenticate it with `api.force_authenticate(user)`)."""
    return APIClient()


@pytest.fixture
def snapshot(project):
    """A snapshot of the project's curated labels (a module whose `project` curates some)."""
    return snapshot_create(project=project, name="first", validation_fraction=0.25)


@pytest.fixture
def run(project, snapshot):
    """A queued DPO run on `snapshot`, without the held-out evaluation."""
    return training_launch(project=project, snapshot=snapshot,
                           settings=TrainingSettings(method="dpo", eval_budget=0))


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
