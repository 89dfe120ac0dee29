"""The reliability job: a thin entry point into annotator.services.oversight."""

from __future__ import annotations

from django_tasks import task

from annotator.models import JobStatus, ReliabilityRun
from annotator.services.oversight import reliability_execute


@task()
def reliability_run(job_id: int) -> None:
    """Estimate expert reliability and label confidences (see `reliability_execute`)."""
    run = ReliabilityRun.objects.select_related("project").get(pk=job_id)
    if run.status == JobStatus.CANCELLED:
        return
    reliability_execute(run=run)
