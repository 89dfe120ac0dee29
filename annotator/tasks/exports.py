"""The export job: a thin entry point into annotator.services.exports."""

from __future__ import annotations

from django_tasks import task

from annotator.models import Export, JobStatus
from annotator.services.exports import export_execute


@task()
def export_run(job_id: int) -> None:
    """Write one export's file (see `export_execute`)."""
    export = Export.objects.select_related("project", "snapshot").get(pk=job_id)
    if export.status == JobStatus.CANCELLED:
        return
    export_execute(export=export)
