"""Writes shared by every background job: enqueue on commit, heartbeat, cancel, resume, crash
recovery.

Campaigns, training runs and exports all subclass `annotator.models.Job`; these functions work
on any of them, so each job module only writes its own stages.

A kind of job is a `Job` subclass plus one line in JOB_TASKS naming its task. Services reach
the task modules only through those dotted paths (`job_enqueue`, `task_enqueue`), so the task
modules, which are thin entry points into the services, never form an import circle with them.
To add a kind: the model, its line here, a task module that calls its service, and the views
from `annotator.views.jobs.job_action_view` and `annotator.api.common.job_action_api`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from annotator import queue_backends
from annotator.models import (
    Campaign,
    Export,
    Job,
    JobStatus,
    LabelStudy,
    ReliabilityRun,
    RiskDiscovery,
    TrainingRun,
)

logger = logging.getLogger(__name__)

# Each kind of job and the task (a dotted path) that runs it: task(job_id=...).
JOB_TASKS: dict[type[Job], str] = {
    Campaign: "annotator.tasks.campaigns.campaign_run",
    TrainingRun: "annotator.tasks.training.training_job",
    Export: "annotator.tasks.exports.export_run",
    LabelStudy: "annotator.tasks.studies.label_study_job",
    ReliabilityRun: "annotator.tasks.oversight.reliability_run",
    RiskDiscovery: "annotator.tasks.risks.risk_discovery_run",
}
JOB_MODELS: tuple[type[Job], ...] = tuple(JOB_TASKS)


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag was set; the job stops cleanly."""


class JobStateError(ValidationError):
    """The job is not in a state that allows the action (e.g. cancelling a finished export)."""


def task_enqueue(path: str, *, run_after: datetime | None = None, **task_kwargs: Any) -> None:
    """Enqueue the task at the dotted `path` once the surrounding transaction commits (the one
    way a service reaches a task module).

    `run_after` defers it where the queue can (the database and RQ workers); a backend that
    cannot defer (the immediate one, for debugging) runs it at once.
    """

    def enqueue() -> None:
        task = import_string(path)
        if run_after is not None and task.get_backend().supports_defer:
            task = task.using(run_after=run_after)
        task.enqueue(**task_kwargs)

    transaction.on_commit(enqueue)


def job_enqueue(*, job: Job, **task_kwargs: Any) -> None:
    """Enqueue the job's task (JOB_TASKS) once the surrounding transaction commits.

    Enqueuing after commit guarantees the worker finds the row it is asked to work on.
    """

    def enqueue() -> None:
        result = import_string(JOB_TASKS[type(job)]).enqueue(job_id=job.pk, **task_kwargs)
        type(job).objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(enqueue)


def _noun(job: Job) -> str:
    return str(type(job)._meta.verbose_name)


def job_cancel(*, job: Job) -> Job:
    """Stop a job: at once if queued, at its next progress report if running (training stops
    with a checkpoint). Its finished work is kept."""
    if not job.is_active:
        raise JobStateError(f"Only a queued or running {_noun(job)} can be cancelled.")
    job_request_cancel(job=job)
    return job


@transaction.atomic
def job_resume(*, job: Job) -> Job:
    """Run a failed or cancelled job again; its stages continue from their checkpoints."""
    locked = type(job).objects.select_for_update().get(pk=job.pk)
    if not locked.can_resume:
        raise JobStateError(f"Only a failed or cancelled {_noun(job)} can be resumed.")
    job_prepare_resume(job=locked)
    job_enqueue(job=locked)
    return locked


def job_start(*, job: Job, stage: str = "") -> None:
    """Mark a job running (again, when resumed); clears an earlier error."""
    now = timezone.now()
    job.status = JobStatus.RUNNING
    job.stage = stage
    job.error = ""
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.finished_at = None
    job.save(update_fields=["status", "stage", "error", "started_at", "heartbeat_at", "finished_at"])


def job_progress(*, job: Job, stage: str, done: int, total: int, **extra: Any) -> None:
    """Record a stage's progress and beat the heart; raise JobCancelled if cancel was asked.

    The rate and ETA are derived from when the stage started, so the page needs no maths.
    """
    now = timezone.now()
    progress = dict(job.progress or {})
    entry = dict(progress.get(stage) or {})
    entry.setdefault("started", now.isoformat())
    started = timezone.datetime.fromisoformat(entry["started"])
    elapsed = max((now - started).total_seconds(), 1e-6)
    first_done = entry.setdefault("first_done", done)
    rate = (done - first_done) / elapsed if done > first_done else 0.0
    entry.update(done=done, total=total, rate=round(rate, 3),
                 eta_s=round((total - done) / rate, 1) if rate > 0 else None, **extra)
    progress[stage] = entry
    job.progress = progress
    job.stage = stage
    job.heartbeat_at = now
    type(job).objects.filter(pk=job.pk).update(progress=progress, stage=stage, heartbeat_at=now)
    job_check_cancel(job=job)


def job_check_cancel(*, job: Job) -> None:
    if type(job).objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled()


def job_finish(*, job: Job, status: str, error: str = "") -> None:
    job.status = status
    job.error = error
    job.finished_at = timezone.now()
    job.heartbeat_at = job.finished_at
    job.save(update_fields=["status", "error", "finished_at", "heartbeat_at"])


def job_request_cancel(*, job: Job) -> None:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next
    progress report (between batches)."""
    with transaction.atomic():
        locked = type(job).objects.select_for_update().get(pk=job.pk)
        if not locked.is_active:
            return
        locked.cancel_requested = True
        fields = ["cancel_requested"]
        if locked.status == JobStatus.QUEUED:
            locked.status = JobStatus.CANCELLED
            locked.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        locked.save(update_fields=fields)
    job.refresh_from_db()


def job_prepare_resume(*, job: Job) -> None:
    """Let a failed or cancelled job run again from its checkpoints."""
    job.status = JobStatus.QUEUED
    job.cancel_requested = False
    job.error = ""
    job.finished_at = None
    job.save(update_fields=["status", "cancel_requested", "error", "finished_at"])


def jobs_recover_stale(*, now=None) -> list[str]:
    """Mark jobs whose worker died as failed, so they show the error and can be resumed.

    A job is dead when its task is running on this host under a process that no longer exists
    (the database worker and RQ alike: `queue_backends.dead_task_ids`), or when its heartbeat
    is older than JOB_STALE_SECONDS (a worker on another host).
    """
    now = now or timezone.now()
    recovered: list[str] = []
    dead_task_ids = queue_backends.dead_task_ids(now=now)
    stale_before = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    for model in JOB_MODELS:
        dead = model.objects.filter(status=JobStatus.RUNNING).filter(
            Q(task_id__in=dead_task_ids) | Q(heartbeat_at__lt=stale_before)
        )
        for job in dead:
            job_finish(job=job, status=JobStatus.FAILED,
                       error="The worker running this job stopped unexpectedly; resume it to "
                       "continue from the last checkpoint.")
            recovered.append(f"{model.__name__} {job.pk}")
            logger.warning("Recovered dead job %s %s", model.__name__, job.pk)
    return recovered

