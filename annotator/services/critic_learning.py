"""The critic learns from every decision: automatic retraining, debounced per project.

1. Every expert decision calls `critic_learning_note` inside its transaction. While a retrain
   check is scheduled for the project (Project.critic_retrain_due_at, on the project row the
   request's access check has already read) this costs nothing. Otherwise one conditional
   UPDATE schedules a check CRITIC_RETRAIN_MINUTES from now, and the check's task is enqueued,
   deferred to that time, once the decision commits. A burst of decisions thus schedules one
   check, and a project never has more than one scheduled (the UPDATE only succeeds for the
   request that finds no schedule, even when experts decide at the same moment).
2. The check (`critic_retrain_check`, in the worker) counts the decisions newer than those the
   stored head learnt from (Project.critic_trained_through) and retrains when there are
   CRITIC_RETRAIN_DECISIONS or more. It then clears the schedule, or, when decisions arrived
   while it ran, schedules the next check itself: a decision is never left unlearnt because it
   landed during a retrain.
3. A schedule RETRAIN_STALE past its time (its worker died, its task was lost) is taken over by
   the next decision; the old task, should it still run, sees that the schedule changed and does
   nothing. The retrain button and the API retrain at once, outside this schedule.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import CriticRetrain, Project
from annotator.selectors.critic import decisions_since
from annotator.services.critic import critic_head_retrain, latest_review_id
from annotator.services.jobs import task_enqueue

RETRAIN_STALE = timedelta(hours=1)
CHECK_TASK = "annotator.tasks.critic.critic_retrain_check"


def _schedule_is(project: Project, due: str) -> bool:
    return (project.critic_retrain_due_at is not None
            and project.critic_retrain_due_at == datetime.fromisoformat(due))


def _enqueue_check(*, project_id: int, due: datetime) -> None:
    task_enqueue(CHECK_TASK, run_after=due, project_id=project_id, due=due.isoformat())


def critic_learning_note(*, project: Project) -> None:
    """Count an expert decision towards the next retrain (call inside the decision's
    transaction, with the project as the request read it)."""
    now = timezone.now()
    due = project.critic_retrain_due_at
    if due is not None and due > now - RETRAIN_STALE:
        return  # a check is scheduled (or running): it will see this decision
    free = Q(critic_retrain_due_at__isnull=True) | Q(critic_retrain_due_at__lte=now - RETRAIN_STALE)
    new_due = now + timedelta(minutes=settings.CRITIC_RETRAIN_MINUTES)
    if Project.objects.filter(free, pk=project.pk).update(critic_retrain_due_at=new_due):
        _enqueue_check(project_id=project.pk, due=new_due)
    # Either way a check is scheduled now; later calls on this object need not try again.
    project.critic_retrain_due_at = new_due


def critic_retrain_check(*, project_id: int, due: str) -> dict:
    """The scheduled check: retrain when enough new decisions arrived, then clear or re-arm."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"checked": False, "reason": "the project no longer exists"}
    if not _schedule_is(project, due):
        return {"checked": False, "reason": "another check took over this project's schedule"}
    seen = latest_review_id(project=project)
    new = decisions_since(project=project, review_id=project.critic_trained_through)
    summary = {"checked": True, "new_decisions": new, "needed": settings.CRITIC_RETRAIN_DECISIONS,
               "trained": False}
    try:
        if new >= settings.CRITIC_RETRAIN_DECISIONS:
            summary.update(critic_head_retrain(project=project,
                                               trigger=CriticRetrain.Trigger.AUTO))
    finally:
        summary["next_check"] = _close_check(project_id=project_id, due=due, seen=seen)
    return summary


def _close_check(*, project_id: int, due: str, seen: int) -> str | None:
    """Clear the schedule, or schedule the next check when decisions arrived during this one."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().filter(pk=project_id).first()
        if locked is None or not _schedule_is(locked, due):
            return None
        if decisions_since(project=locked, review_id=seen):
            locked.critic_retrain_due_at = timezone.now() + timedelta(
                minutes=settings.CRITIC_RETRAIN_MINUTES)
            _enqueue_check(project_id=locked.pk, due=locked.critic_retrain_due_at)
        else:
            locked.critic_retrain_due_at = None
        locked.save(update_fields=["critic_retrain_due_at"])
        due_at = locked.critic_retrain_due_at
    return due_at.isoformat() if due_at else None
