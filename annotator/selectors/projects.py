"""Reads for the project pages."""

from __future__ import annotations

from django.db.models import Count, Q

from annotator.models import ItemState, LearnerVersion, Project


def project_overview(*, project: Project) -> dict:
    """Counts for the project dashboard, in two queries."""
    items = project.review_items.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(state=ItemState.PENDING)),
        disagreement=Count("id", filter=Q(state=ItemState.DISAGREEMENT)),
        curated=Count("id", filter=Q(state__in=[ItemState.DONE, ItemState.AUTO_ACCEPTED])),
    )
    return {
        "items": items,
        "active_learner": LearnerVersion.objects.filter(
            project=project, status=LearnerVersion.Status.ACTIVE).first(),
        "campaigns": project.campaigns.select_related("learner_version")[:5],
        "training_runs": project.training_runs.select_related("output_version")[:5],
    }
