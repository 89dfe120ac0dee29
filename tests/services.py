"""The suite's second run, on PostgreSQL with RQ workers (`make test-services`, CI).

The environment picks the services, as it does for the app: DATABASE_URL=postgres://...,
TASKS_BACKEND=rq and REDIS_URL. tests/conftest.py imports the hook and fixtures below.

- REQUIRE_SERVICES=1 (set by `make test-services`) checks before any test that PostgreSQL and
  Redis answer, and stops the run with the reason if not: there, a test that skips for want of
  a service would be a silent hole, not a convenience.
- With TASKS_BACKEND=rq the test process enqueues into a Redis database leased for the session
  (never the caller's own database), emptied after every test: like the test database, the
  queue starts empty for each test instead of handing one test's jobs to the next.
"""

from __future__ import annotations

import os

import pytest

from scripts.live_redis import redis_answers, redis_lease, redis_release, redis_reset


def _configured() -> tuple[str, str, str]:
    return (os.environ.get("DATABASE_URL", ""), os.environ.get("TASKS_BACKEND", "db"),
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def services_problem() -> str:
    """Why the environment is not the services run, or "" when PostgreSQL and Redis answer."""
    import psycopg

    from scripts.live_server import _postgres_params, is_postgres

    database_url, backend, redis_url = _configured()
    if not database_url or not is_postgres(database_url):
        return "DATABASE_URL must name PostgreSQL (postgres://user:pass@host:port/name)"
    try:
        psycopg.connect(**_postgres_params(database_url), connect_timeout=5).close()
    except psycopg.Error as error:
        return f"PostgreSQL at DATABASE_URL does not answer: {error}"
    if backend != "rq":
        return "TASKS_BACKEND must be rq"
    if not redis_answers(redis_url):
        return f"no Redis answers at REDIS_URL ({redis_url})"
    return ""


def pytest_sessionstart(session: pytest.Session) -> None:
    _database_url, backend, redis_url = _configured()
    if os.environ.get("REQUIRE_SERVICES") == "1":
        problem = services_problem()
        if problem:
            pytest.exit(f"REQUIRE_SERVICES=1: {problem}. `scripts/services.sh start` starts "
                        "both and prints the settings.", returncode=3)
    elif backend == "rq" and not redis_answers(redis_url):
        pytest.exit(f"TASKS_BACKEND=rq, but no Redis answers at REDIS_URL ({redis_url}); "
                    "start it (scripts/services.sh start) or unset TASKS_BACKEND.", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _rq_session_database():
    """The session's own Redis database, when the queue is RQ; None otherwise."""
    from django.conf import settings

    if settings.TASKS_BACKEND != "rq":
        yield None
        return
    leased = redis_lease(_configured()[2])
    originals = {name: config.get("URL") for name, config in settings.RQ_QUEUES.items()}
    for config in settings.RQ_QUEUES.values():
        config["URL"] = leased
    try:
        yield leased
    finally:
        for name, url in originals.items():
            settings.RQ_QUEUES[name]["URL"] = url
        redis_release(leased)


@pytest.fixture(autouse=True)
def _rq_empty_queue(_rq_session_database):
    yield
    if _rq_session_database:
        redis_reset(_rq_session_database)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, the test database's tables are never auto-vacuumed or auto-analysed.

    A test's rows are never committed: they are rolled back, which leaves pages of dead rows.
    When autovacuum analyses such a table between tests it records "0 rows on N pages", and the
    planner then believes every later row count is 1. In the next test that inserts a few hundred
    rows, a four-table join by primary key (review_submit's) was planned as nested loops over all
    of them: 264 x 264 x 264 rows, 3.3 s per decision, and the oversight panel test ran for over
    an hour (CI's timeout). Never analysed, a table's size is estimated from its current pages,
    uncommitted rows included, which is what a test needs. Deployments keep autovacuum: there,
    rows are committed and the statistics follow them.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT tablename FROM pg_tables "
                               "WHERE schemaname = current_schema()")
                for (table,) in cursor.fetchall():
                    cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} SET "
                                   "(autovacuum_enabled = false, toast.autovacuum_enabled = false)")
