"""A worker killed with SIGKILL in the middle of a training run or a campaign.

A real `manage.py worker` process runs the job on a temp database (SQLite, or PostgreSQL when
DATABASE_URL says so) with the tiny model; once the job's progress shows it is mid-way, the
process gets `kill -9` (no cleanup code runs). Then, as after a real crash: a new worker starts
(its stale-job recovery marks the job of the dead process failed), the job is resumed through
its service, and a worker finishes it. Nothing may be duplicated, and no half-written adapter
may ever be visible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from scripts.live_server import deployment_env, json_value, query, seed, start_worker, stop


@pytest.fixture
def deployment(tmp_path, tmp_path_factory, tiny_dir):
    with deployment_env(tmp_path, template_dir=tmp_path_factory.getbasetemp() / "live-template",
                        LEARNER_MODEL=str(tiny_dir), CAMPAIGN_BATCH_SIZE="2",
                        CAMPAIGN_MAX_NEW_TOKENS="8", CAMPAIGN_CRITIC="rules",
                        LOG_LEVEL="INFO") as env:
        yield {"env": env, "dir": tmp_path}


def job_row(env: dict[str, str], table: str, pk: int) -> dict:
    status, progress, error = query(
        env, f"SELECT status, progress, error FROM {table} WHERE id = ?", pk)[0]
    return {"status": status, "progress": json_value(progress) or {}, "error": error}


def recover_and_resume(deployment: dict, kind: str, table: str, pk: int, check_failed) -> dict:
    """Start a fresh worker (its startup recovery marks the dead job failed), run
    `check_failed(row)` while the job is failed, resume it through its service and let the same
    worker finish it. Returns the finished job's row."""
    log = deployment["dir"] / "recovered.log"
    worker = start_worker(deployment["env"], log_path=log)
    try:
        row = _wait_for_status(deployment, table, pk, {"failed"}, worker)
        # The worker prints its list of recovered jobs after marking them failed, so the line
        # may follow the status change by a moment.
        line = f"Recovered dead job: {'TrainingRun' if kind == 'training' else 'Campaign'} {pk}"
        deadline = time.monotonic() + 30
        while line not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert line in log.read_text()
        check_failed(row)
        assert seed(deployment["env"], "resume", kind, str(pk))["status"] == "queued"
        return _wait_for_status(deployment, table, pk, {"succeeded", "failed", "cancelled"},
                                worker)
    finally:
        stop(worker)


def _wait_for_status(deployment: dict, table: str, pk: int, statuses: set[str],
                     worker: subprocess.Popen, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = job_row(deployment["env"], table, pk)
        if row["status"] in statuses:
            return row
        assert worker.poll() is None, f"the worker exited: {worker.returncode}"
        assert time.monotonic() < deadline, f"still {row['status']}, not {statuses}"
        time.sleep(0.1)


def kill_when(deployment: dict, table: str, pk: int, midway) -> dict:
    """Start a worker, wait until `midway(progress)` holds for the job, then SIGKILL it."""
    worker = start_worker(deployment["env"], log_path=deployment["dir"] / "killed.log")
    try:
        deadline = time.monotonic() + 300
        while True:
            row = job_row(deployment["env"], table, pk)
            assert row["status"] in ("queued", "running"), f"finished before the kill: {row}"
            if row["status"] == "running" and midway(row["progress"]):
                break
            assert time.monotonic() < deadline, f"never got mid-way: {row}"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        stop(worker)
    return job_row(deployment["env"], table, pk)


def test_a_training_run_killed_mid_way_fails_cleanly_and_resumes_without_duplicates(deployment):
    data = seed(deployment["env"], "seed-training", "--slug", "crash", "--max-steps", "30")
    run, adapter_dir = data["run"], Path(data["adapter_dir"])

    def midway(progress: dict) -> bool:
        train = progress.get("train") or {}
        return 6 <= train.get("done", 0) < train.get("total", 0)

    at_kill = kill_when(deployment, "annotator_trainingrun", run, midway)
    assert at_kill["status"] == "running"  # the dead worker could not say anything
    step_at_kill = at_kill["progress"]["train"]["done"]

    def while_failed(row: dict) -> None:
        # 1. The new worker noticed the job of the dead process and marked it failed.
        assert "stopped unexpectedly" in row["error"]
        # 2. Nothing half-done is visible: no learner version, nothing at the adapter's path.
        assert query(deployment["env"], "SELECT COUNT(*) FROM annotator_learnerversion "
                     "WHERE adapter_path != ''")[0][0] == 0
        assert not adapter_dir.exists()

    # 3. Resumed through the service, it continues from the last checkpoint and finishes.
    row = recover_and_resume(deployment, "training", "annotator_trainingrun", run, while_failed)
    assert row["status"] == "succeeded", row["error"]
    versions = query(deployment["env"], "SELECT v.id, v.adapter_path, v.status FROM "
                     "annotator_learnerversion v JOIN annotator_trainingrun r "
                     "ON r.output_version_id = v.id WHERE r.id = ?", run)
    assert len(versions) == 1
    assert query(deployment["env"], "SELECT COUNT(*) FROM annotator_learnerversion "
                 "WHERE adapter_path != ''")[0][0] == 1
    # The adapter is complete: weights, config and the manifest written last.
    files = {path.name for path in adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "superalign.json"} <= files
    # The loss curve has each step once, all 30 of them, and the run did not start over.
    (history, log), = query(deployment["env"], "SELECT loss_history, log FROM "
                            "annotator_trainingrun WHERE id = ?", run)
    steps = [point["step"] for point in json_value(history)]
    assert sorted(steps) == list(range(1, 31))
    assert len(steps) == len(set(steps))
    assert "resum" in log.lower(), log
    assert step_at_kill >= 6


def test_a_campaign_killed_mid_way_fails_cleanly_and_resumes_without_duplicates(deployment):
    budget = 12
    data = seed(deployment["env"], "seed-campaign", "--slug", "crashred", "--budget", str(budget))
    campaign = data["campaign"]

    def midway(progress: dict) -> bool:
        respond = progress.get("respond") or {}
        return 2 <= respond.get("done", 0) < respond.get("total", 0)

    at_kill = kill_when(deployment, "annotator_campaign", campaign, midway)
    assert at_kill["status"] == "running"

    def while_failed(row: dict) -> None:
        assert "stopped unexpectedly" in row["error"]

    row = recover_and_resume(deployment, "campaign", "annotator_campaign", campaign, while_failed)
    assert row["status"] == "succeeded", row["error"]

    env = deployment["env"]
    attacks = query(env, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM annotator_attackquery "
                         "WHERE campaign_id = ?", campaign)[0]
    assert attacks == (budget, budget)
    responses = query(env, "SELECT COUNT(*), COUNT(DISTINCT r.attack_id) "
                           "FROM annotator_response r "
                           "JOIN annotator_attackquery a ON a.id = r.attack_id "
                           "WHERE a.campaign_id = ?", campaign)[0]
    assert responses == (budget, budget)
    critiques = query(env, "SELECT COUNT(*), COUNT(DISTINCT c.response_id) "
                           "FROM annotator_critique c "
                           "JOIN annotator_response r ON r.id = c.response_id "
                           "JOIN annotator_attackquery a ON a.id = r.attack_id "
                           "WHERE a.campaign_id = ?", campaign)[0]
    assert critiques == (budget, budget)
    items = query(env, "SELECT COUNT(*) FROM annotator_reviewitem i "
                       "JOIN annotator_critique c ON c.id = i.critique_id "
                       "JOIN annotator_response r ON r.id = c.response_id "
                       "JOIN annotator_attackquery a ON a.id = r.attack_id "
                       "WHERE a.campaign_id = ?", campaign)[0][0]
    assert items == budget
