"""Background retraining of a project's critic head: on demand, and the debounced automatic
check (annotator/services/critic_learning.py)."""

from __future__ import annotations

from django_tasks import task

from annotator.models import CriticRetrain, Project
from annotator.services.critic import critic_head_retrain
from annotator.services.critic_learning import critic_retrain_check as check


@task()
def retrain_critic_head(project_id: int, trigger: str = CriticRetrain.Trigger.MANUAL.value) -> dict:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"trained": False, "reason": "the project no longer exists"}
    return critic_head_retrain(project=project, trigger=trigger)


@task()
def critic_retrain_check(project_id: int, due: str) -> dict:
    return check(project_id=project_id, due=due)
