"""Background retraining of a project's critic head (embedding many texts takes a while)."""

from __future__ import annotations

from django_tasks import task

from annotator.models import Project
from annotator.services.critic import critic_head_retrain


@task()
def retrain_critic_head(project_id: int) -> dict:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"trained": False, "reason": "the project no longer exists"}
    return critic_head_retrain(project=project)
