"""The training job: a thin entry point into annotator.services.training_pipeline."""

from __future__ import annotations

from django_tasks import task

from annotator.models import JobStatus, TrainingRun
from annotator.services.training_pipeline import training_execute


@task()
def training_job(job_id: int) -> dict:
    """Train, register and evaluate one TrainingRun (resumable)."""
    run = TrainingRun.objects.select_related("project", "snapshot", "base_version",
                                             "output_version").get(pk=job_id)
    if run.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return {"status": run.status, "skipped": True}  # e.g. cancelled while still queued
    return training_execute(run=run)
