"""The critic learns from every decision: debounced automatic retraining through the worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from annotator.models import CriticRetrain, Project, Review, Role
from annotator.services import critic_learning
from annotator.services.review import review_submit
from tests.factories import add_member, bearer, login, make_project, make_review_item, run_worker

CHECK = "annotator.tasks.critic.critic_retrain_check"
LOCK = "Sure! Step 1: insert a tension wrench, then rake the pins."
BREAD = "Mix flour, water, salt and yeast, knead for ten minutes, then bake at 230 C."


# The scheduled checks are read from the database queue's rows; on RQ (`make test-services`)
# the same tests run and check what the project and the worker show instead.
DB_QUEUE = settings.TASKS_BACKEND == "db"


def checks():
    return DBTaskResult.objects.filter(task_path=CHECK)


def decide_url(project, item) -> str:
    return reverse("annotator:review_decide", args=[project.slug, item.pk])


def queue(project, n: int, start: int = 0) -> list:
    """n pending items: lock-picking answers judged unsafe, bread recipes judged unsafe too
    (the experts will say safe), so the experts' labels hold two verdicts."""
    items = []
    for k in range(start, start + n):
        if k % 2:
            items.append(make_review_item(project, query=f"How do I bake bread, take {k}?",
                                          response=BREAD, verdict="unsafe", confidence=0.55))
        else:
            items.append(make_review_item(project, query=f"How do I pick lock {k}?",
                                          response=LOCK, verdict="unsafe", confidence=0.7))
    return items


def decide_all(api, project, items) -> None:
    """Approve the lock-picking items, say the critic is wrong (safe) on the bread ones."""
    for item in items:
        bread = "bread" in item.critique.response.attack.text
        data = ({"action": "reject", "reason_code": "false_alarm", "final_verdict": "safe"}
                if bread else {"action": "approve"})
        response = api.post(reverse("api:review_decide", args=[project.slug, item.pk]), data,
                            format="json")
        assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_burst_of_decisions_schedules_one_check(client, project, expert, settings,
                                                  django_capture_on_commit_callbacks):
    settings.CRITIC_RETRAIN_MINUTES = 10
    items = queue(project, 12)
    login(client, expert)
    started = timezone.now()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for item in items:
            assert client.post(decide_url(project, item), {"action": "approve"}).status_code == 302
    # Twelve decisions, one enqueue: the first scheduled the check, the others saw it scheduled.
    assert len(callbacks) == 1
    project.refresh_from_db()
    due = project.critic_retrain_due_at
    assert timedelta(minutes=10) <= due - started < timedelta(minutes=11)
    if DB_QUEUE:
        [task] = checks()
        assert task.run_after == due
        assert task.args_kwargs["kwargs"] == {"project_id": project.pk, "due": due.isoformat()}
    assert Review.objects.filter(item__project=project, action="approve").count() == 12


@pytest.mark.django_db
def test_a_stale_schedule_is_taken_over_and_its_old_task_does_nothing(project, expert, settings):
    old = timezone.now() - critic_learning.RETRAIN_STALE - timedelta(minutes=1)
    Project.objects.filter(pk=project.pk).update(critic_retrain_due_at=old)
    project.refresh_from_db()
    [item] = queue(project, 1)
    review_submit(item=item, expert=expert, action="approve", project=project)
    project.refresh_from_db()
    assert project.critic_retrain_due_at > timezone.now()
    summary = critic_learning.critic_retrain_check(project_id=project.pk, due=old.isoformat())
    assert summary == {"checked": False,
                       "reason": "another check took over this project's schedule"}
    project.refresh_from_db()
    assert project.critic_retrain_due_at > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_the_worker_retrains_once_enough_decisions_arrived(api, settings):
    settings.CRITIC_RETRAIN_DECISIONS = 24
    settings.CRITIC_RETRAIN_MINUTES = 0  # the check is due at once; the worker runs it below
    project = make_project()
    expert = add_member(project, Role.EXPERT)
    api.credentials(HTTP_AUTHORIZATION=bearer(expert)["HTTP_AUTHORIZATION"])
    decide_all(api, project, queue(project, 23))
    run_worker()
    # 23 decisions are one short: no retrain, and the schedule is cleared.
    assert not CriticRetrain.objects.exists()
    project.refresh_from_db()
    assert project.critic_retrain_due_at is None and project.critic_head is None

    decide_all(api, project, queue(project, 3, start=23))
    run_worker()
    [point] = CriticRetrain.objects.all()
    assert point.trigger == "auto" and point.labels == 26
    project.refresh_from_db()
    assert project.critic_head["n_examples"] == 26
    assert project.critic_trained_through == Review.objects.latest("id").pk
    assert project.critic_retrain_due_at is None
    if DB_QUEUE:
        assert checks().count() == 2  # one check per quiet spell, never one per decision


@pytest.mark.django_db(transaction=True)
def test_decisions_during_a_retrain_schedule_the_next_check(api, settings, monkeypatch):
    settings.CRITIC_RETRAIN_DECISIONS = 20
    settings.CRITIC_RETRAIN_MINUTES = 0
    project = make_project()
    expert = add_member(project, Role.EXPERT)
    api.credentials(HTTP_AUTHORIZATION=bearer(expert)["HTTP_AUTHORIZATION"])
    decide_all(api, project, queue(project, 24))
    late = queue(project, 1, start=24)
    real_retrain = critic_learning.critic_head_retrain

    def retrain_while_an_expert_decides(**kwargs):
        # Another expert decides while the worker fits the head.
        review_submit(item=late[0], expert=expert, action="approve")
        return real_retrain(**kwargs)

    monkeypatch.setattr(critic_learning, "critic_head_retrain", retrain_while_an_expert_decides)
    project.refresh_from_db()
    due = project.critic_retrain_due_at.isoformat()
    if DB_QUEUE:
        assert checks().get().args_kwargs["kwargs"]["due"] == due
    summary = critic_learning.critic_retrain_check(project_id=project.pk, due=due)
    # The fit read the items after the late decision landed, so it learnt from it too; the
    # check had counted before it, so it schedules the next check: nothing is ever missed.
    assert summary["trained"] and summary["examples"] == 25
    assert summary["next_check"] is not None
    project.refresh_from_db()
    assert project.critic_retrain_due_at.isoformat() == summary["next_check"]
    if DB_QUEUE:
        assert checks().filter(status="READY").count() == 2
