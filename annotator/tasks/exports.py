"""The export job: stream the selected rows into a file, with progress and cancel."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task

from annotator.models import Export, JobStatus
from annotator.services.exports import export_relative_path, export_to_path
from annotator.services.jobs import JobCancelled, job_finish, job_progress, job_start


@task()
def export_run(job_id: int) -> None:
    """Write the export's file. One stage, idempotent: a resumed export rewrites it from scratch
    into a temporary file, so a crash never leaves a partial file in place."""
    export = Export.objects.select_related("project", "snapshot").get(pk=job_id)
    if export.status == JobStatus.CANCELLED:
        return
    job_start(job=export, stage="write")
    try:
        relative = export_relative_path(export=export)
        rows = export_to_path(
            project=export.project, fmt=export.format, path=settings.DATA_DIR / relative,
            filters=export.filters, snapshot=export.snapshot,
            include_provenance=export.include_provenance,
            progress=lambda done, total: job_progress(job=export, stage="write", done=done,
                                                      total=total))
    except JobCancelled:
        job_finish(job=export, status=JobStatus.CANCELLED)
        return
    except Exception as error:
        job_finish(job=export, status=JobStatus.FAILED, error=str(error))
        raise
    Export.objects.filter(pk=export.pk).update(file_path=relative, rows=rows)
    export.file_path, export.rows = relative, rows
    job_finish(job=export, status=JobStatus.SUCCEEDED)
