"""The risk discovery job: a thin entry point into annotator.services.risks."""

from __future__ import annotations

from django_tasks import task

from annotator.models import JobStatus, RiskDiscovery
from annotator.services.risks import risk_discovery_execute


@task()
def risk_discovery_run(job_id: int) -> dict:
    """Cluster a project's successful attacks (see `risk_discovery_execute`)."""
    discovery = RiskDiscovery.objects.select_related("project").get(pk=job_id)
    if discovery.status != JobStatus.QUEUED:
        # Cancelled while it waited, or a duplicate delivery of a run that already ran.
        return {"discovery": discovery.pk, "skipped": discovery.status}
    risk_discovery_execute(discovery=discovery)
    return {"discovery": discovery.pk, "status": discovery.status,
            "clusters": discovery.risks.count()}
