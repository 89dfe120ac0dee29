"""The campaign job: a thin entry point into annotator.services.campaign_runner."""

from __future__ import annotations

from django_tasks import task

from annotator.models import Campaign, JobStatus
from annotator.services.campaign_runner import campaign_execute


@task()
def campaign_run(job_id: int) -> dict:
    """Run (or resume) one campaign. Stages and failure handling live in the service."""
    campaign = Campaign.objects.select_related("project", "learner_version").get(pk=job_id)
    if campaign.status != JobStatus.QUEUED:
        # Cancelled while it waited in the queue, or a duplicate delivery of a job that already
        # ran: there is nothing to do, and running it would overwrite the recorded outcome.
        return {"campaign": campaign.pk, "skipped": campaign.status}
    campaign_execute(campaign=campaign)
    return {"campaign": campaign.pk, "status": campaign.status}
