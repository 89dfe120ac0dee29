"""The background worker: jobs run through the queue (django-tasks-db, or RQ with
TASKS_BACKEND=rq), dead workers' jobs are recovered."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_tasks import default_task_backend
from django_tasks_db.models import DBTaskResult

from annotator.models import JobStatus
from annotator.services.jobs import (
    JobCancelled,
    job_progress,
    job_request_cancel,
    job_start,
    jobs_recover_stale,
)
from annotator.tasks.health import health_check
from tests.factories import make_campaign, make_project

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_runs_a_health_job():
    result = health_check.enqueue(note="ping")
    assert default_task_backend.get_result(result.id).status == "READY"
    call_command("worker", "--batch", "--interval", "0")
    done = default_task_backend.get_result(result.id)
    assert done.status == "SUCCESSFUL"
    assert done.return_value["note"] == "ping"


@pytest.mark.skipif(settings.TASKS_BACKEND != "db", reason=(
    "fakes a django-tasks-db row; tests/test_queue_jobs.py kills a real worker on either queue"))
def test_a_job_running_under_a_dead_worker_is_marked_failed():
    import socket

    campaign = make_campaign(make_project())
    result = health_check.enqueue()
    # A worker process that no longer exists claimed the task: pid 999999 is never alive.
    DBTaskResult.objects.filter(id=result.id).update(
        status="RUNNING", worker_ids=[f"{socket.gethostname()}:999999"])
    campaign.task_id = str(result.id)
    campaign.save()
    job_start(job=campaign, stage="respond")

    recovered = jobs_recover_stale()

    campaign.refresh_from_db()
    assert recovered == [f"Campaign {campaign.pk}"]
    assert campaign.status == JobStatus.FAILED
    assert "resume" in campaign.error
    assert DBTaskResult.objects.get(id=result.id).status == "FAILED"


def test_a_job_with_a_stale_heartbeat_is_marked_failed_and_a_fresh_one_is_not():
    project = make_project()
    stale, fresh = make_campaign(project), make_campaign(project)
    for campaign in (stale, fresh):
        job_start(job=campaign)
    stale.__class__.objects.filter(pk=stale.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1))

    jobs_recover_stale()

    stale.refresh_from_db(), fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert fresh.status == JobStatus.RUNNING


def test_cancel_stops_a_running_job_at_its_next_progress_report():
    campaign = make_campaign(make_project())
    job_start(job=campaign)
    job_progress(job=campaign, stage="respond", done=1, total=4)
    job_request_cancel(job=campaign)
    with pytest.raises(JobCancelled):
        job_progress(job=campaign, stage="respond", done=2, total=4)
    campaign.refresh_from_db()
    assert campaign.progress["respond"]["done"] == 2


def test_cancelling_a_queued_job_cancels_it_at_once():
    campaign = make_campaign(make_project())
    job_request_cancel(job=campaign)
    assert campaign.status == JobStatus.CANCELLED


def test_the_health_page_shows_a_check_a_worker_answered(client):
    import os
    import socket

    from django.urls import reverse

    from tests.factories import make_user

    client.force_login(make_user(is_staff=True))
    page = client.post(reverse("annotator:health"))
    assert "1 task queued, 0 running." in page.content.decode()
    call_command("worker", "--batch", "--interval", "0")  # runs in this process
    page = client.get(reverse("annotator:health")).content.decode()
    assert "0 tasks queued, 0 running." in page
    assert "SUCCESSFUL" in page and f"{socket.gethostname()} {os.getpid()}" in page
