"""The label-source study job: a thin entry point into annotator.services.label_study_runner."""

from __future__ import annotations

from django_tasks import task

from annotator.models import JobStatus, LabelStudy
from annotator.services.label_study_runner import label_study_execute


@task()
def label_study_job(job_id: int) -> dict:
    """Train, measure and compare one study's candidates (resumable)."""
    study = LabelStudy.objects.select_related("project", "snapshot", "base_version").get(pk=job_id)
    if study.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return {"status": study.status, "skipped": True}  # e.g. cancelled while still queued
    return label_study_execute(study=study)
