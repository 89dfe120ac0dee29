"""A worker killed with SIGKILL in the middle of a training run or a campaign.

A real `manage.py worker` process runs the job on a temp SQLite file with the tiny model; once
the job's progress shows it is mid-way, the process gets `kill -9` (no cleanup code runs). Then,
as after a real crash: a new worker starts (its stale-job recovery marks the job of the dead
process failed), the job is resumed through its service, and a worker finishes it. Nothing may
be duplicated, and no half-written adapter may ever be visible.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from scripts.live_server import PYTHON, REPO, app_env, migrated_sqlite, seed, start_worker, stop


@pytest.fixture
def deployment(tmp_path, tmp_path_factory, tiny_dir):
    env = app_env(tmp_path, LEARNER_MODEL=str(tiny_dir), CAMPAIGN_BATCH_SIZE="2",
                  CAMPAIGN_MAX_NEW_TOKENS="8", CAMPAIGN_CRITIC="rules", LOG_LEVEL="INFO")
    migrated_sqlite(env, tmp_path_factory.getbasetemp() / "live-template")
    return {"env": env, "db": tmp_path / "db.sqlite3", "dir": tmp_path}


def query(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as connection:
        return connection.execute(sql, params).fetchall()


def job_row(db: Path, table: str, pk: int) -> dict:
    status, progress, error = query(
        db, f"SELECT status, progress, error FROM {table} WHERE id = ?", pk)[0]
    return {"status": status, "progress": json.loads(progress or "{}"), "error": error}


def run_worker_batch(deployment: dict, name: str) -> str:
    """One `manage.py worker --batch`: recover dead jobs, run the queue empty, exit."""
    log = deployment["dir"] / f"{name}.log"
    done = subprocess.run([PYTHON, "manage.py", "worker", "--batch", "--interval", "0"],
                          cwd=REPO, env=deployment["env"], capture_output=True, text=True,
                          timeout=600)
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def kill_when(deployment: dict, table: str, pk: int, midway) -> dict:
    """Start a worker, wait until `midway(progress)` holds for the job, then SIGKILL it."""
    worker = start_worker(deployment["env"], log_path=deployment["dir"] / "killed.log")
    try:
        deadline = time.monotonic() + 300
        while True:
            row = job_row(deployment["db"], table, pk)
            assert row["status"] in ("queued", "running"), f"finished before the kill: {row}"
            if row["status"] == "running" and midway(row["progress"]):
                break
            assert time.monotonic() < deadline, f"never got mid-way: {row}"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        stop(worker)
    return job_row(deployment["db"], table, pk)


def test_a_training_run_killed_mid_way_fails_cleanly_and_resumes_without_duplicates(deployment):
    data = seed(deployment["env"], "seed-training", "--slug", "crash", "--max-steps", "30")
    run, adapter_dir = data["run"], Path(data["adapter_dir"])

    def midway(progress: dict) -> bool:
        train = progress.get("train") or {}
        return 6 <= train.get("done", 0) < train.get("total", 0)

    at_kill = kill_when(deployment, "annotator_trainingrun", run, midway)
    assert at_kill["status"] == "running"  # the dead worker could not say anything
    step_at_kill = at_kill["progress"]["train"]["done"]

    # 1. A new worker notices the job of the dead process and marks it failed.
    output = run_worker_batch(deployment, "recover")
    assert f"Recovered dead job: TrainingRun {run}" in output
    row = job_row(deployment["db"], "annotator_trainingrun", run)
    assert row["status"] == "failed"
    assert "stopped unexpectedly" in row["error"]
    # 2. Nothing half-done is visible: no learner version, nothing at the adapter's path.
    assert query(deployment["db"], "SELECT COUNT(*) FROM annotator_learnerversion "
                 "WHERE adapter_path != ''")[0][0] == 0
    assert not adapter_dir.exists()

    # 3. Resume through the service; the next worker continues from the last checkpoint.
    assert seed(deployment["env"], "resume", "training", str(run))["status"] == "queued"
    run_worker_batch(deployment, "resumed")
    row = job_row(deployment["db"], "annotator_trainingrun", run)
    assert row["status"] == "succeeded", row["error"]
    versions = query(deployment["db"], "SELECT v.id, v.adapter_path, v.status FROM "
                     "annotator_learnerversion v JOIN annotator_trainingrun r "
                     "ON r.output_version_id = v.id WHERE r.id = ?", run)
    assert len(versions) == 1
    assert query(deployment["db"], "SELECT COUNT(*) FROM annotator_learnerversion "
                 "WHERE adapter_path != ''")[0][0] == 1
    # The adapter is complete: weights, config and the manifest written last.
    files = {path.name for path in adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "superalign.json"} <= files
    # The loss curve has each step once, all 30 of them, and the run did not start over.
    (history, log), = query(deployment["db"], "SELECT loss_history, log FROM "
                            "annotator_trainingrun WHERE id = ?", run)
    steps = [point["step"] for point in json.loads(history)]
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

    output = run_worker_batch(deployment, "recover")
    assert f"Recovered dead job: Campaign {campaign}" in output
    row = job_row(deployment["db"], "annotator_campaign", campaign)
    assert row["status"] == "failed"
    assert "stopped unexpectedly" in row["error"]

    assert seed(deployment["env"], "resume", "campaign", str(campaign))["status"] == "queued"
    run_worker_batch(deployment, "resumed")
    row = job_row(deployment["db"], "annotator_campaign", campaign)
    assert row["status"] == "succeeded", row["error"]

    db = deployment["db"]
    attacks = query(db, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM annotator_attackquery "
                        "WHERE campaign_id = ?", campaign)[0]
    assert attacks == (budget, budget)
    responses = query(db, "SELECT COUNT(*), COUNT(DISTINCT r.attack_id) FROM annotator_response r "
                          "JOIN annotator_attackquery a ON a.id = r.attack_id "
                          "WHERE a.campaign_id = ?", campaign)[0]
    assert responses == (budget, budget)
    critiques = query(db, "SELECT COUNT(*), COUNT(DISTINCT c.response_id) FROM annotator_critique c "
                          "JOIN annotator_response r ON r.id = c.response_id "
                          "JOIN annotator_attackquery a ON a.id = r.attack_id "
                          "WHERE a.campaign_id = ?", campaign)[0]
    assert critiques == (budget, budget)
    items = query(db, "SELECT COUNT(*) FROM annotator_reviewitem i "
                      "JOIN annotator_critique c ON c.id = i.critique_id "
                      "JOIN annotator_response r ON r.id = c.response_id "
                      "JOIN annotator_attackquery a ON a.id = r.attack_id "
                      "WHERE a.campaign_id = ?", campaign)[0][0]
    assert items == budget
