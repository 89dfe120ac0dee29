"""Races against a real deployment: gunicorn and `manage.py worker` processes on one database
(a temp SQLite file, or a fresh PostgreSQL database when DATABASE_URL is PostgreSQL; the
database queue, or RQ with TASKS_BACKEND=rq).

In-process tests cannot race: the test client runs one request at a time on one connection.
Here two logged-in experts post their decisions at the same instant (released together by a
threading.Barrier) to gunicorn's separate worker processes, and two queue workers compete for
the same jobs. The database is then read directly to check what was really stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests
from django_tasks import task

from scripts import live_server
from scripts.live_server import deployment_env, gunicorn, login_session, query, seed
from tests import live_jobs


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A migrated temp database served by gunicorn (two processes, four threads each)."""
    workdir = tmp_path_factory.mktemp("concurrency")
    template_dir = tmp_path_factory.getbasetemp() / "live-template"
    with deployment_env(workdir, template_dir=template_dir) as env, \
            gunicorn(env, workers=2, threads=4, log_path=workdir / "gunicorn.log") as base:
        yield {"env": env, "base": base, "workdir": workdir}


def side_query(db: Path, sql: str, *params) -> list[tuple]:
    """The test's own side database (a SQLite file), not the deployment's."""
    with sqlite3.connect(db, timeout=30) as connection:
        return connection.execute(sql, params).fetchall()


def decide_together(base: str, slug: str, item: int, sessions: list[requests.Session],
                    forms: list[dict]) -> list[int]:
    """Post one decision per session on `item`, all released at the same instant."""
    barrier = threading.Barrier(len(sessions))
    statuses: list[int] = [0] * len(sessions)

    def post(index: int) -> None:
        session = sessions[index]
        url = f"{base}/p/{slug}/review/items/{item}/decide/"
        data = {**forms[index], "csrfmiddlewaretoken": session.cookies["csrftoken"]}
        barrier.wait(timeout=60)
        answer = session.post(url, data=data, allow_redirects=False, timeout=120,
                              headers={"Referer": url})
        statuses[index] = answer.status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return statuses


def item_row(env: dict[str, str], item: int) -> tuple[str, int]:
    return query(env, "SELECT state, reviews_done FROM annotator_reviewitem WHERE id = ?", item)[0]


def reviews_of(env: dict[str, str], item: int) -> list[tuple[str, str]]:
    return query(env, "SELECT u.username, r.action FROM annotator_review r JOIN auth_user u "
                      "ON u.id = r.expert_id WHERE r.item_id = ? ORDER BY u.username", item)


APPROVE = {"action": "approve"}
REJECT = {"action": "reject", "reason_code": "false_alarm"}


def test_two_experts_deciding_one_item_at_once_are_both_recorded(deployment) -> None:
    """Overlap 2: both simultaneous decisions count; none is lost, the item ends right."""
    data = seed(deployment["env"], "seed-review", "--slug", "both", "--experts", "2",
                "--items", "4", "--overlap", "2")
    sessions = [login_session(deployment["base"], name) for name in data["experts"]]
    for index, item in enumerate(data["items"]):
        # Half the items get the same decision twice, half a disagreement.
        second = APPROVE if index % 2 == 0 else REJECT
        statuses = decide_together(deployment["base"], "both", item, sessions, [APPROVE, second])
        assert statuses == [302, 302]
        assert reviews_of(deployment["env"], item) == [
            (data["experts"][0], "approve"), (data["experts"][1], second["action"])]
        expected_state = "done" if second is APPROVE else "disagreement"
        assert item_row(deployment["env"], item) == (expected_state, 2)


def test_only_one_of_two_simultaneous_decisions_wins_a_single_review_item(deployment) -> None:
    """Overlap 1: exactly one decision is stored, the other expert is told the item is done."""
    data = seed(deployment["env"], "seed-review", "--slug", "one", "--experts", "2",
                "--items", "4", "--overlap", "1")
    sessions = [login_session(deployment["base"], name) for name in data["experts"]]
    for item in data["items"]:
        statuses = decide_together(deployment["base"], "one", item, sessions, [APPROVE, REJECT])
        assert sorted(statuses) == [302, 400]
        reviews = reviews_of(deployment["env"], item)
        assert len(reviews) == 1
        winner = data["experts"][statuses.index(302)]
        assert reviews[0][0] == winner
        assert item_row(deployment["env"], item) == ("done", 1)


# -- two queue workers, one queue ---------------------------------------------------------------


@task()
def record_run(*, log: str, n: int) -> None:
    """A quick job that appends (n, pid) to a side database: how often and where it ran."""
    time.sleep(0.01)
    with sqlite3.connect(log, timeout=60) as connection:
        connection.execute("INSERT INTO runs (n, pid) VALUES (?, ?)", (n, os.getpid()))


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def test_two_workers_on_one_queue_run_every_job_exactly_once(deployment, tmp_path) -> None:
    env = {**deployment["env"], "LOG_LEVEL": "INFO"}
    log = tmp_path / "runs.sqlite3"
    with sqlite3.connect(log) as connection:
        connection.execute("CREATE TABLE runs (n INTEGER NOT NULL, pid INTEGER NOT NULL)")
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [live_server.start_worker(env, log_path=path, interval=0.05) for path in logs]
    try:
        # Both must be waiting for jobs before the jobs arrive, or one could take them all.
        ready = live_server.worker_ready_line(env)
        _wait_for(lambda: all(ready in path.read_text() for path in logs), 180,
                  "both workers to start")
        count = 120
        ids = seed(deployment["env"], "enqueue", "--task", "tests.test_concurrency.record_run",
                   "--count", str(count), "--kwargs", json.dumps({"log": str(log)}))["task_ids"]

        def finished() -> bool:
            results = live_jobs.run(deployment["env"], "task-results", *ids).values()
            return all(result["status"] in ("SUCCESSFUL", "FAILED") for result in results)

        # Every job has run (cheap to watch), then the queue has recorded every outcome.
        _wait_for(lambda: side_query(log, "SELECT COUNT(*) FROM runs")[0][0] >= count, 240,
                  "every job to run")
        _wait_for(finished, 60, "the queue to record every outcome")
    finally:
        for worker in workers:
            live_server.stop(worker)
    runs = side_query(log, "SELECT n, COUNT(*) FROM runs GROUP BY n")
    assert dict(runs) == dict.fromkeys(range(count), 1)
    # The queue's own record, whichever backend it is (the database's table, or Redis).
    results = live_jobs.run(deployment["env"], "task-results", *ids).values()
    assert [result["status"] for result in results] == ["SUCCESSFUL"] * count
    pids = {pid for (pid,) in side_query(log, "SELECT DISTINCT pid FROM runs")}
    assert pids == {worker.pid for worker in workers}, "both workers must have taken jobs"
    # Each task names the one worker (host:pid) that ran it.
    assert {result["worker_ids"][-1].rpartition(":")[2] for result in results} == {
        str(worker.pid) for worker in workers}
