"""Campaign API: list, launch, status, cancel, resume (success, 400, 401, 403, 404, 405)."""

from __future__ import annotations

import pytest

from annotator.models import Campaign, JobStatus, Role
from annotator.services.jobs import job_finish, job_progress, job_start
from tests.factories import (
    active_learner,
    add_member,
    make_campaign,
    make_project,
    make_review_item,
)

pytestmark = pytest.mark.django_db


def base(project) -> str:
    return f"/api/projects/{project.slug}/campaigns/"


def test_it_lists_campaigns(api, project, expert):
    make_campaign(project, name="First")
    make_campaign(project, name="Second")
    make_campaign(make_project(), name="Elsewhere")
    api.force_authenticate(expert)
    response = api.get(base(project))
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["Second", "First"]


def test_it_launches_a_campaign(api, project, admin, django_capture_on_commit_callbacks):
    api.force_authenticate(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(base(project), {"strategies": ["direct", "hypothetical"],
                                            "categories": ["fraud"], "budget": 12, "seed": 4},
                            format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    campaign = Campaign.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["budget"] == 12
    assert body["learner_version"] == active_learner(project).pk
    assert campaign.strategies == ["direct", "hypothetical"] and campaign.created_by == admin
    assert campaign.task_id


def test_launch_rejects_bad_input(api, project, admin):
    api.force_authenticate(admin)
    for payload, field in [({"strategies": ["nope"], "budget": 4}, "strategies"),
                           ({"strategies": ["direct"], "budget": 0}, "budget"),
                           ({"strategies": ["direct"]}, "budget"),
                           ({"strategies": ["direct"], "budget": 4, "learner_version": 999999},
                            "learner_version")]:
        response = api.post(base(project), payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["errors"], response.json()
    assert not Campaign.objects.exists()


def test_it_requires_authentication(api, project):
    assert api.get(base(project)).status_code == 401
    assert api.post(base(project), {"strategies": ["direct"], "budget": 4},
                    format="json").status_code == 401


def test_launch_cancel_and_resume_require_admin(api, project, expert):
    campaign = make_campaign(project)
    api.force_authenticate(expert)
    assert api.post(base(project), {"strategies": ["direct"], "budget": 4},
                    format="json").status_code == 403
    assert api.post(f"{base(project)}{campaign.pk}/cancel/").status_code == 403
    assert api.post(f"{base(project)}{campaign.pk}/resume/").status_code == 403


def test_it_hides_other_projects(api, project):
    outsider = add_member(make_project(), Role.ADMIN)
    campaign = make_campaign(project)
    api.force_authenticate(outsider)
    assert api.get(base(project)).status_code == 404
    assert api.get(f"{base(project)}{campaign.pk}/").status_code == 404
    assert api.post(f"{base(project)}{campaign.pk}/cancel/").status_code == 404


def test_it_hides_a_campaign_of_another_project(api, project, admin):
    other = make_campaign(make_project())
    api.force_authenticate(admin)
    assert api.get(f"{base(project)}{other.pk}/").status_code == 404


def test_it_reports_status_progress_and_report(api, project, expert):
    campaign = make_campaign(project)
    job_start(job=campaign)
    make_review_item(project, campaign=campaign, verdict="unsafe")
    job_progress(job=campaign, stage="critique", done=1, total=1)
    api.force_authenticate(expert)
    body = api.get(f"{base(project)}{campaign.pk}/").json()
    assert body["status"] == "running" and body["stage"] == "critique"
    assert body["progress"]["critique"]["done"] == 1
    assert body["report"]["asr"]["overall"]["n"] == 1
    assert body["report"]["verdicts"]["unsafe"] == 1


def test_it_cancels_and_resumes(api, project, admin, django_capture_on_commit_callbacks):
    campaign = make_campaign(project)
    job_start(job=campaign)
    api.force_authenticate(admin)
    response = api.post(f"{base(project)}{campaign.pk}/cancel/")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    job_finish(job=campaign, status=JobStatus.CANCELLED)  # the job stopped at its next batch
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{base(project)}{campaign.pk}/resume/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    campaign.refresh_from_db()
    assert campaign.task_id and not campaign.cancel_requested


def test_cancel_and_resume_refuse_the_wrong_state(api, project, admin):
    finished = make_campaign(project)
    job_finish(job=finished, status=JobStatus.SUCCEEDED)
    api.force_authenticate(admin)
    assert api.post(f"{base(project)}{finished.pk}/cancel/").status_code == 400
    response = api.post(f"{base(project)}{finished.pk}/resume/")
    assert response.status_code == 400 and "resumed" in response.json()["detail"]


def test_it_rejects_wrong_methods(api, project, admin):
    campaign = make_campaign(project)
    api.force_authenticate(admin)
    assert api.get(f"{base(project)}{campaign.pk}/cancel/").status_code == 405
    assert api.get(f"{base(project)}{campaign.pk}/resume/").status_code == 405
    assert api.delete(f"{base(project)}{campaign.pk}/").status_code == 405
    assert api.put(base(project), {}, format="json").status_code == 405
