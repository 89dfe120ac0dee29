"""The throwaway deployments of scripts/live_server.py on PostgreSQL: one database each, dropped.

With a PostgreSQL DATABASE_URL every deployment must get a fresh database of its own on that
server; sharing the caller's database made deployments collide (duplicate slugs, another
deployment's jobs in the queue, leftovers from an earlier test). With SQLite each deployment
already has its own file in its directory, so there is nothing to check there.
"""

from __future__ import annotations

import os

import dj_database_url
import psycopg
import pytest

from scripts.live_server import deployment_env, is_postgres, postgres_exists, query, seed

CALLER_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not (CALLER_URL and is_postgres(CALLER_URL)),
    reason="needs DATABASE_URL=postgres://... (a role with CREATEDB); with SQLite each "
           "deployment has its own file anyway")


def database_name(env: dict[str, str]) -> str:
    return dj_database_url.parse(env["DATABASE_URL"])["NAME"]


def test_two_deployments_get_their_own_databases_and_both_are_dropped(tmp_path) -> None:
    template_dir = tmp_path / "template"
    with deployment_env(tmp_path / "a", template_dir=template_dir) as first, \
            deployment_env(tmp_path / "b", template_dir=template_dir) as second:
        names = {database_name(first), database_name(second)}
        assert len(names) == 2
        assert dj_database_url.parse(CALLER_URL)["NAME"] not in names
        assert all(postgres_exists(CALLER_URL, name) for name in names)
        # The same slug in both: one shared database would refuse the second project.
        seed(first, "seed-review", "--slug", "same", "--experts", "1", "--items", "3")
        seed(second, "seed-review", "--slug", "same", "--experts", "1", "--items", "2")
        assert query(first, "SELECT COUNT(*) FROM annotator_reviewitem") == [(3,)]
        assert query(second, "SELECT COUNT(*) FROM annotator_reviewitem") == [(2,)]
    assert not any(postgres_exists(CALLER_URL, name) for name in names)


def test_a_failed_deployment_is_dropped_even_with_a_connection_still_open(tmp_path) -> None:
    with (  # noqa: PT012 (the failure has to happen inside the deployment)
        pytest.raises(RuntimeError, match="the test failed"),
        deployment_env(tmp_path, template_dir=tmp_path / "template") as env,
    ):
        name = database_name(env)
        # Like a gunicorn thread's kept connection or a killed worker's: still open at drop.
        lingering = psycopg.connect(env["DATABASE_URL"], autocommit=True)
        lingering.execute("SELECT 1")
        raise RuntimeError("the test failed")
    try:
        assert not postgres_exists(CALLER_URL, name)
        with pytest.raises(psycopg.OperationalError):  # the drop closed it
            lingering.execute("SELECT 1")
    finally:
        lingering.close()
