"""Every kind of background job through two competing workers of a real deployment.

gunicorn and two `manage.py worker` processes share one database and one queue: the database
queue by default, RQ workers on Redis with TASKS_BACKEND=rq (`make test-services`), so the same
test proves both engines run campaigns, training runs, exports and critic retraining alike. An
admin drives everything as a user does, through the REST API and the project page; the jobs'
outcomes are read back through the API, and the database and the queue are checked directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from scripts.live_server import (
    deployment_env,
    gunicorn,
    json_value,
    login_session,
    query,
    start_worker,
    stop,
    worker_ready_line,
)
from tests import live_jobs

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def deployment(tmp_path, tmp_path_factory, tiny_dir):
    """A deployment on the tiny model served by gunicorn, with a seeded project and its admin."""
    with deployment_env(tmp_path, template_dir=tmp_path_factory.getbasetemp() / "live-template",
                        LEARNER_MODEL=str(tiny_dir), CAMPAIGN_BATCH_SIZE="2",
                        CAMPAIGN_MAX_NEW_TOKENS="8", CAMPAIGN_CRITIC="rules",
                        LOG_LEVEL="INFO") as env, \
            gunicorn(env, workers=1, threads=4, log_path=tmp_path / "gunicorn.log") as base:
        data = live_jobs.run(env, "seed", "jobs")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {data['key']}"
        workers: list[subprocess.Popen] = []
        try:
            yield {"env": env, "base": base, "dir": tmp_path, "api": api, "workers": workers,
                   "slug": data["slug"], "admin": data["admin"]}
        finally:
            for worker in workers:
                stop(worker)


def start_workers(deployment: dict, count: int) -> list[subprocess.Popen]:
    """Start `count` more workers and wait until each waits for jobs."""
    first = len(deployment["workers"])
    logs = [deployment["dir"] / f"worker{first + n}.log" for n in range(count)]
    started = [start_worker(deployment["env"], log_path=log, interval=0.1) for log in logs]
    deployment["workers"].extend(started)
    ready = worker_ready_line(deployment["env"])
    wait_for(lambda: all(ready in log.read_text() for log in logs), 180, "the workers to start")
    return started


def wait_for(predicate: Callable[[], object], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def call(deployment: dict, verb: str, path: str, expected: int, **body) -> dict:
    url = f"{deployment['base']}/api/projects/{deployment['slug']}/{path}"
    answer = deployment["api"].request(verb, url, json=body or None, timeout=60)
    assert answer.status_code == expected, (verb, path, answer.status_code, answer.text)
    return answer.json()


def wait_for_status(deployment: dict, path: str, statuses: set[str], timeout: float = 400) -> dict:
    def reached() -> dict | None:
        body = call(deployment, "GET", path, 200)
        return body if body["status"] in statuses else None

    return wait_for(reached, timeout, f"{path} to reach {statuses}")


def worker_pids(deployment: dict, *task_ids: str) -> list[int]:
    """The pid of the worker that ran (or runs) each task, as the queue itself records it."""
    results = live_jobs.run(deployment["env"], "task-results", *task_ids)
    return [int(results[task_id]["worker_ids"][-1].rpartition(":")[2]) for task_id in task_ids]


def task_id(deployment: dict, table: str, pk: int) -> str:
    return query(deployment["env"], f"SELECT task_id FROM {table} WHERE id = ?", pk)[0][0]


def launch_training(deployment: dict, **settings) -> dict:
    snapshot = call(deployment, "POST", "snapshots/", 201, name="jobs", validation_fraction=0.25)
    return call(deployment, "POST", "training-runs/", 201, snapshot=snapshot["id"],
                method="dpo", lora_r=4, lora_alpha=8, lora_dropout=0.0, batch_size=1,
                max_length=64, epochs=100, eval_budget=0, **settings)


def test_two_workers_share_a_campaign_a_training_run_an_export_and_a_critic_retrain(deployment):
    workers = start_workers(deployment, 2)
    run = launch_training(deployment, max_steps=8, checkpoint_every=4)
    campaign = call(deployment, "POST", "campaigns/", 201, strategies=["direct"], budget=6, seed=1)
    export = call(deployment, "POST", "exports/", 202, format="trl_preference")
    page = login_session(deployment["base"], deployment["admin"])
    url = f"{deployment['base']}/p/{deployment['slug']}/critic/retrain/"
    retrain = page.post(url, data={"csrfmiddlewaretoken": page.cookies["csrftoken"]},
                        headers={"Referer": url}, allow_redirects=False, timeout=60)
    assert retrain.status_code == 302

    run = wait_for_status(deployment, f"training-runs/{run['id']}/", TERMINAL)
    campaign = wait_for_status(deployment, f"campaigns/{campaign['id']}/", TERMINAL)
    export = wait_for_status(deployment, f"exports/{export['id']}/", TERMINAL)
    assert (run["status"], campaign["status"], export["status"]) == ("succeeded",) * 3, (
        run["error"], campaign["error"], export["error"])

    # Each job did its whole work, and said so in its progress.
    assert run["progress"]["train"]["done"] == run["progress"]["train"]["total"] == 8
    assert [point["step"] for point in run["loss_history"]] == list(range(1, 9))
    learners = call(deployment, "GET", "learners/", 200)["results"]
    assert [v["id"] for v in learners if v["status"] == "candidate"] == [run["output_version"]]
    assert all(stage["done"] == stage["total"] for stage in campaign["progress"].values())
    items = query(deployment["env"], "SELECT COUNT(*) FROM annotator_reviewitem i JOIN "
                  "annotator_critique c ON c.id = i.critique_id JOIN annotator_response r ON "
                  "r.id = c.response_id JOIN annotator_attackquery a ON a.id = r.attack_id "
                  "WHERE a.campaign_id = ?", campaign["id"])[0][0]
    assert items == 6
    download = deployment["api"].get(
        f"{deployment['base']}/api/projects/{deployment['slug']}/exports/{export['id']}/download/",
        timeout=60)
    assert download.status_code == 200
    rows = [json.loads(line) for line in download.text.splitlines()]
    assert len(rows) == export["rows"] == 12 and {"prompt", "chosen", "rejected"} <= set(rows[0])
    # The critic's head was fitted on the 24 expert decisions (a background job too).
    head = wait_for(lambda: query(deployment["env"], "SELECT critic_head FROM annotator_project "
                                  "WHERE slug = ?", deployment["slug"])[0][0], 300,
                    "the critic's head")
    head = json_value(head)
    assert head["n_examples"] == 24 and head["label_counts"] == {"safe": 12, "unsafe": 12}

    # Both workers took jobs: the queue records which worker ran each task.
    pids = worker_pids(deployment, task_id(deployment, "annotator_trainingrun", run["id"]),
                       task_id(deployment, "annotator_campaign", campaign["id"]),
                       task_id(deployment, "annotator_export", export["id"]))
    assert set(pids) == {worker.pid for worker in workers}


def test_cancel_resume_and_a_killed_worker_while_the_other_works_on(deployment):
    """Cancel stops a run with a checkpoint and Resume continues it; a worker SIGKILLed in the
    middle of the run leaves it running in the database until a new worker recovers it as
    failed, while the other worker goes on taking jobs; resumed, it finishes with each step
    once and one complete adapter."""
    start_workers(deployment, 2)
    total = 60
    run = launch_training(deployment, max_steps=total, checkpoint_every=5)
    path = f"training-runs/{run['id']}/"

    def train_done() -> int:
        return (call(deployment, "GET", path, 200)["progress"].get("train") or {}).get("done", 0)

    # 1. Cancel mid-way: the run stops after its current step, with a checkpoint.
    wait_for(lambda: train_done() >= 3, 300, "three steps")
    call(deployment, "POST", path + "cancel/", 200)
    cancelled = wait_for_status(deployment, path, {"cancelled", "succeeded"})
    assert cancelled["status"] == "cancelled"
    stopped_at = cancelled["progress"]["train"]["done"]
    assert 3 <= stopped_at < total

    # 2. Resume: it continues from the checkpoint, not from step 1.
    assert call(deployment, "POST", path + "resume/", 202)["status"] == "queued"
    wait_for(lambda: train_done() >= stopped_at + 3, 300, "three more steps")
    log = query(deployment["env"], "SELECT log FROM annotator_trainingrun WHERE id = ?",
                run["id"])[0][0]
    assert f"Resuming from the checkpoint at step {stopped_at}/" in log

    # 3. SIGKILL the worker running it; the other one keeps taking jobs.
    running_task = task_id(deployment, "annotator_trainingrun", run["id"])
    victim_pid = worker_pids(deployment, running_task)[0]
    victim = next(w for w in deployment["workers"] if w.pid == victim_pid)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    assert call(deployment, "GET", path, 200)["status"] == "running"  # nobody could say otherwise
    campaign = call(deployment, "POST", "campaigns/", 201, strategies=["direct"], budget=4, seed=2)
    campaign = wait_for_status(deployment, f"campaigns/{campaign['id']}/", TERMINAL)
    assert campaign["status"] == "succeeded", campaign["error"]
    survivor = worker_pids(deployment, task_id(deployment, "annotator_campaign", campaign["id"]))
    assert survivor[0] != victim_pid

    # 4. A new worker recovers the dead run as failed; nothing half-done is visible.
    start_workers(deployment, 1)
    failed = wait_for_status(deployment, path, {"failed"}, timeout=60)
    assert "stopped unexpectedly" in failed["error"]
    # The queue's own record agrees.
    assert live_jobs.run(deployment["env"], "task-results", running_task)[running_task][
        "status"] == "FAILED"
    adapter = Path(deployment["env"]["DATA_DIR"]) / "adapters" / deployment["slug"] / \
        f"run-{run['id']}"
    assert query(deployment["env"], "SELECT COUNT(*) FROM annotator_learnerversion "
                 "WHERE adapter_path != ''")[0][0] == 0
    assert not adapter.exists()

    # 5. Resumed once more, it finishes: every step once, one complete adapter.
    assert call(deployment, "POST", path + "resume/", 202)["status"] == "queued"
    finished = wait_for_status(deployment, path, TERMINAL)
    assert finished["status"] == "succeeded", finished["error"]
    steps = [point["step"] for point in finished["loss_history"]]
    assert steps == list(range(1, total + 1))
    assert query(deployment["env"], "SELECT adapter_path FROM annotator_learnerversion "
                 "WHERE adapter_path != ''") == [(f"adapters/{deployment['slug']}/run-{run['id']}",)]
    assert {"adapter_model.safetensors", "adapter_config.json", "superalign.json"} <= {
        file.name for file in adapter.iterdir()}
