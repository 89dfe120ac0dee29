"""What differs between the two task queues, django-tasks-db and RQ, in one place.

The app enqueues through `django.tasks` and never minds which backend runs its jobs. Three
things do depend on it, and each is one function here: the command a worker runs
(`worker_command`), finding the tasks whose worker process died (`dead_task_ids`, used by
`services.jobs.jobs_recover_stale`), and what the health page shows (`queue_overview`).

Both backends run a job inside the long-lived worker process itself: django-tasks-db always
does, and RQ workers run as `rq.worker.SimpleWorker` instead of RQ's default of forking a
child per job. So on either backend a job dies with its worker and nowhere else (with a fork,
a SIGKILLed worker leaves its child running the job, unseen), a worker keeps the models it
loaded from one job to the next, and "the pid is gone" means "the job is dead".
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

HEALTH_TASK = "annotator.tasks.health.health_check"


def uses_rq() -> bool:
    return settings.TASKS_BACKEND == "rq"


def worker_identity() -> str:
    """`host:pid`: how a worker names itself, so that recovery can tell whether it still lives."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def worker_command(*, batch: bool, interval: float) -> tuple[str, list[str]]:
    """The management command (and its arguments) that processes the task queue.

    `batch` exits once the queue is empty; `interval` is how often the database worker polls
    (RQ workers block on Redis instead, and are woken by each new job).
    """
    if uses_rq():
        # The job and worker classes come from settings.RQ. The scheduler moves deferred tasks
        # (the critic's debounced retrain check) onto the queue when they are due.
        args = [*settings.RQ_QUEUES, "--name", worker_identity(), "--with-scheduler"]
        return "rqworker", [*args, "--burst"] if batch else args
    args = ["--worker-id", worker_identity(), "--interval", str(interval)]
    return "db_worker", [*args, "--batch"] if batch else args


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _died_here(host: str, pid: int | None) -> bool:
    return host == socket.gethostname() and pid is not None and not _pid_alive(pid)


def dead_task_ids(*, now: datetime) -> list[str]:
    """Mark the tasks whose worker process died on this host as failed in the queue itself, and
    return their ids (jobs on other hosts are found by their stale heartbeat instead)."""
    return _rq_dead_task_ids() if uses_rq() else _db_dead_task_ids(now)


def _db_dead_task_ids(now: datetime) -> list[str]:
    from django_tasks_db.models import DBTaskResult

    dead = []
    for result in DBTaskResult.objects.filter(status="RUNNING"):
        name, _, pid = (result.worker_ids or [""])[-1].rpartition(":")
        if pid.isdigit() and _died_here(name, int(pid)):
            dead.append(str(result.id))
            DBTaskResult.objects.filter(pk=result.pk).update(
                status="FAILED", finished_at=now, exception_class_path="annotator.WorkerDied",
                traceback="The worker running this task died.",
            )
    return dead


def _rq_queues() -> list:
    import django_rq
    from django_tasks_rq.backend import Job as TaskJob

    return [django_rq.get_queue(name, job_class=TaskJob) for name in settings.RQ_QUEUES]


def _rq_dead_task_ids() -> list[str]:
    """Jobs in RQ's started registry whose worker is gone: its Redis key expired, or it ran on
    this host under a pid that no longer exists. RQ itself would only notice once the job's
    registry entry expires (the job timeout plus a minute: a day here), so the entry is expired
    now and RQ's own clean-up moves the job to the failed registry, as for any abandoned job."""
    from rq.exceptions import NoSuchJobError
    from rq.worker import Worker

    dead = []
    for queue in _rq_queues():
        registry, connection = queue.started_job_registry, queue.connection
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                job = queue.job_class.fetch(job_id, connection=connection)
            except NoSuchJobError:
                continue
            worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix
                                        + (job.worker_name or ""), connection=connection)
            if worker is not None and not _died_here(worker.hostname or "", worker.pid):
                continue
            if worker is not None:
                worker.register_death()  # so that it leaves RQ's list of workers at once
            connection.zadd(registry.key, {f"{job_id}:{execution_id}": 0}, xx=True)
            dead.append(job_id)
        if dead:
            registry.cleanup()
    return dead


def queue_overview(*, limit: int = 10) -> dict[str, Any]:
    """Tasks queued and running, and the latest health checks (enqueued_at, status, answer)."""
    return _rq_overview(limit) if uses_rq() else _db_overview(limit)


def _db_overview(limit: int) -> dict[str, Any]:
    from django_tasks_db.models import DBTaskResult

    checks = DBTaskResult.objects.filter(task_path=HEALTH_TASK).order_by("-enqueued_at")[:limit]
    return {
        "queued": DBTaskResult.objects.filter(status="READY").count(),
        "running": DBTaskResult.objects.filter(status="RUNNING").count(),
        "checks": [{"enqueued_at": check.enqueued_at, "status": check.status,
                    "answer": check.return_value or {}} for check in checks],
    }


def _rq_overview(limit: int) -> dict[str, Any]:
    """RQ keeps a finished job's result for a few minutes (its result TTL), so the list of
    health checks is the recent ones only."""
    queued = running = 0
    checks = []
    for queue in _rq_queues():
        queued += queue.count
        running += queue.started_job_registry.count
        ids = [*queue.get_job_ids(), *queue.started_job_registry.get_job_ids(),
               *queue.finished_job_registry.get_job_ids(),
               *queue.failed_job_registry.get_job_ids()]
        for job in queue.job_class.fetch_many(ids, connection=queue.connection):
            if job is None or job.func_name != HEALTH_TASK:
                continue
            result = job.task_result
            answer = result.return_value if result.status == "SUCCESSFUL" else None
            checks.append({"enqueued_at": result.enqueued_at or timezone.now(),
                           "status": result.status, "answer": answer or {}})
    checks.sort(key=lambda check: check["enqueued_at"], reverse=True)
    return {"queued": queued, "running": running, "checks": checks[:limit]}
