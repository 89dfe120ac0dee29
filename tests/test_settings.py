import pytest
from django.core.exceptions import ImproperlyConfigured

from annotator.settings import database_from_url, envbool, envint, envlist, tasks_from_env


def test_envbool_reads_the_usual_spellings(monkeypatch):
    for raw, expected in [("1", True), ("true", True), ("YES", True), ("on", True),
                          ("0", False), ("false", False), ("no", False), ("", False)]:
        monkeypatch.setenv("SA_FLAG", raw)
        assert envbool("SA_FLAG", "false") is expected


def test_envbool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("SA_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SA_FLAG must be a boolean"):
        envbool("SA_FLAG", "false")


def test_envint_default_and_error(monkeypatch):
    monkeypatch.delenv("SA_NUM", raising=False)
    assert envint("SA_NUM", "7") == 7
    monkeypatch.setenv("SA_NUM", "seven")
    with pytest.raises(ImproperlyConfigured, match="SA_NUM must be an integer"):
        envint("SA_NUM", "7")


def test_envlist_strips_and_drops_empties(monkeypatch):
    monkeypatch.setenv("SA_HOSTS", " a.example , ,b.example")
    assert envlist("SA_HOSTS", "") == ["a.example", "b.example"]


def test_sqlite_gets_wal_and_immediate_transactions():
    config = database_from_url("sqlite:////tmp/x.sqlite3")
    assert config["ENGINE"] == "annotator.sqlite_backend"  # Django's, writers taking turns
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_sqlite_connections_are_kept_between_requests():
    # Closing the last connection to a WAL database checkpoints and deletes the log: reopening
    # per request cost more CPU than a whole review decision (benchmarks/load.py).
    config = database_from_url("sqlite:////tmp/x.sqlite3")
    assert config["CONN_MAX_AGE"] == 60
    assert config["CONN_HEALTH_CHECKS"] is True


def test_postgres_url_is_parsed():
    config = database_from_url("postgres://sa:secret@db.internal:5433/superalign")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "superalign")
    assert config["CONN_HEALTH_CHECKS"] is True


def test_postgres_gets_a_connection_pool_and_prepared_statements():
    config = database_from_url("postgres://sa:secret@db/superalign", pool=(2, 6))
    # A pool and kept connections exclude each other (Django refuses both).
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 6, "timeout": 30}
    assert config["OPTIONS"]["server_side_binding"] is True
    assert config["OPTIONS"]["prepare_threshold"] == 5


def test_postgres_pool_and_prepared_statements_can_be_turned_off():
    # Behind PgBouncer in transaction mode: plain connections, nothing prepared.
    config = database_from_url("postgres://sa:secret@db/superalign", pool=None,
                               prepared_statements=False)
    assert config["CONN_MAX_AGE"] == 60
    assert "pool" not in config["OPTIONS"] and "server_side_binding" not in config["OPTIONS"]


def test_bad_database_url_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url("nonsense://what")


def test_tasks_backends():
    assert tasks_from_env("db", "")["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    assert tasks_from_env("rq", "redis://x")["default"]["BACKEND"] == "django_tasks_rq.RQBackend"
    with pytest.raises(ImproperlyConfigured, match="TASKS_BACKEND"):
        tasks_from_env("celery", "")


def test_production_defaults_are_safe(settings):
    # The suite runs with DEBUG unset, i.e. the production defaults.
    assert settings.DEBUG is False
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert settings.SECURE_HSTS_SECONDS >= 31536000
    assert settings.SESSION_COOKIE_HTTPONLY
