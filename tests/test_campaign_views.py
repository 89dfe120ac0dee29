"""Campaign pages: list, launch form (admins), live detail page with htmx polling, cancel, resume."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotator.models import Campaign, JobStatus
from annotator.services.jobs import job_finish, job_progress, job_start
from tests.factories import make_campaign, make_project, make_review_item

pytestmark = pytest.mark.django_db


def url(name: str, project, *args) -> str:
    return reverse(f"annotator:{name}", args=[project.slug, *args])


def finished_campaign(project) -> Campaign:
    campaign = make_campaign(project, name="Round one", strategies=["direct", "roleplay"])
    job_start(job=campaign)
    make_review_item(project, campaign=campaign, query="<b>How</b> do I pick a lock?",
                     response="Sure! Step 1: <script>alert(1)</script>", verdict="unsafe",
                     strategy="roleplay")
    make_review_item(project, campaign=campaign, query="How do locks work?", verdict="safe",
                     response="A pin tumbler lock has pins.", severity=0, strategy="direct")
    job_progress(job=campaign, stage="critique", done=2, total=2)
    job_finish(job=campaign, status=JobStatus.SUCCEEDED)
    return campaign


# -- list ----------------------------------------------------------------------------------------


def test_it_lists_campaigns_for_viewers(client, project, viewer):
    finished_campaign(project)
    client.force_login(viewer)
    response = client.get(url("campaign_list", project))
    assert response.status_code == 200
    assert b"Round one" in response.content
    assert b"Launch a campaign" not in response.content  # viewers cannot launch
    assert url("campaign_list", project).encode() in response.content  # the nav entry


def test_it_shows_the_launch_button_to_admins(client, project, admin):
    client.force_login(admin)
    assert b"Launch a campaign" in client.get(url("campaign_list", project)).content


def test_it_hides_other_projects(client, project, outsider):
    campaign = finished_campaign(project)
    client.force_login(outsider)
    assert client.get(url("campaign_list", project)).status_code == 404
    assert client.get(url("campaign_detail", project, campaign.pk)).status_code == 404
    assert client.post(url("campaign_cancel", project, campaign.pk)).status_code == 404


def test_it_hides_a_campaign_of_another_project_behind_its_own_slug(client, project, admin):
    other = finished_campaign(make_project())
    client.force_login(admin)
    assert client.get(url("campaign_detail", project, other.pk)).status_code == 404


def test_it_requires_login(client, project):
    response = client.get(url("campaign_list", project))
    assert response.status_code == 302 and "login" in response["Location"]


def test_list_rejects_post(client, project, admin):
    client.force_login(admin)
    assert client.post(url("campaign_list", project)).status_code == 405


# -- launch --------------------------------------------------------------------------------------


def test_it_shows_the_launch_form_to_admins(client, project, admin):
    client.force_login(admin)
    response = client.get(url("campaign_launch", project))
    assert response.status_code == 200
    assert b'value="roleplay"' in response.content and b'value="fraud"' in response.content


def test_launch_requires_admin(client, project, expert):
    client.force_login(expert)
    assert client.get(url("campaign_launch", project)).status_code == 403
    assert client.post(url("campaign_launch", project),
                       {"strategies": ["direct"], "budget": 4, "samples_per_attack": 1,
                        "seed": 0}).status_code == 403
    assert not Campaign.objects.exists()


def test_it_launches_a_campaign(client, project, admin, django_capture_on_commit_callbacks):
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("campaign_launch", project), {
            "name": "Night shift", "strategies": ["direct", "roleplay"], "categories": ["fraud"],
            "budget": 8, "samples_per_attack": 1, "seed": 5})
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
    assert campaign.name == "Night shift" and campaign.created_by == admin
    assert campaign.strategies == ["direct", "roleplay"] and campaign.categories == ["fraud"]
    assert campaign.budget == 8 and campaign.seed == 5
    assert campaign.task_id  # the job was enqueued once the launch committed


def test_launch_rejects_bad_input(client, project, admin):
    client.force_login(admin)
    response = client.post(url("campaign_launch", project),
                           {"strategies": ["warp-drive"], "budget": 0, "samples_per_attack": 1,
                            "seed": 0})
    assert response.status_code == 400
    assert b"warp-drive" in response.content
    assert not Campaign.objects.exists()


# -- detail, polling -----------------------------------------------------------------------------


def test_it_shows_live_progress_that_polls_while_running(client, project, viewer):
    campaign = make_campaign(project)
    job_start(job=campaign)
    job_progress(job=campaign, stage="respond", done=3, total=8)
    client.force_login(viewer)

    page = client.get(url("campaign_detail", project, campaign.pk))
    partial = client.get(url("campaign_detail", project, campaign.pk) + "?poll=1",
                         HTTP_HX_REQUEST="true")

    for response in (page, partial):
        assert response.status_code == 200
        assert b'hx-trigger="every 2s"' in response.content
        assert b'<progress max="8" value="3">' in response.content
        assert b"3 / 8" in response.content
        assert b"Cancel" not in response.content  # viewers cannot cancel
    assert b"<html" not in partial.content and b"<html" in page.content


def test_a_finished_campaign_stops_polling_and_the_last_poll_reloads_the_page(
        client, project, admin):
    campaign = finished_campaign(project)
    client.force_login(admin)
    page = client.get(url("campaign_detail", project, campaign.pk))
    assert b"every 2s" not in page.content
    poll = client.get(url("campaign_detail", project, campaign.pk) + "?poll=1",
                      HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and poll["HX-Refresh"] == "true"


def test_it_shows_the_report_with_escaped_model_output(client, project, viewer):
    campaign = finished_campaign(project)
    client.force_login(viewer)
    response = client.get(url("campaign_detail", project, campaign.pk))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'id="campaign-report-data"' in content  # chart data for uPlot, via json_script
    assert "js/campaign_report.js" in content and "vendor/uplot/uPlot.iife.min.js" in content
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert 'id="asr-by-strategy"' in content and "roleplay" in content
    assert "Most successful attacks" in content


def test_it_shows_the_error_and_resume_button_of_a_failed_campaign(client, project, admin):
    campaign = make_campaign(project)
    job_start(job=campaign)
    job_finish(job=campaign, status=JobStatus.FAILED, error="RuntimeError: out of memory")
    client.force_login(admin)
    response = client.get(url("campaign_detail", project, campaign.pk))
    assert b"RuntimeError: out of memory" in response.content
    assert b"Resume" in response.content and b">Cancel<" not in response.content


# -- cancel, resume ------------------------------------------------------------------------------


def test_it_cancels_a_running_campaign(client, project, admin):
    campaign = make_campaign(project)
    job_start(job=campaign)
    client.force_login(admin)
    response = client.post(url("campaign_cancel", project, campaign.pk))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.cancel_requested and campaign.status == JobStatus.RUNNING


def test_it_cancels_over_htmx_and_returns_the_status_partial(client, project, admin):
    campaign = make_campaign(project)  # queued: cancelled at once
    client.force_login(admin)
    response = client.post(url("campaign_cancel", project, campaign.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'id="campaign-status"' in response.content and b"<html" not in response.content
    assert b"Resume" in response.content
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.CANCELLED


def test_cancel_rejects_get(client, project, admin):
    campaign = make_campaign(project)
    client.force_login(admin)
    assert client.get(url("campaign_cancel", project, campaign.pk)).status_code == 405
    assert client.get(url("campaign_resume", project, campaign.pk)).status_code == 405


def test_cancel_and_resume_require_admin(client, project, expert):
    campaign = make_campaign(project)
    client.force_login(expert)
    assert client.post(url("campaign_cancel", project, campaign.pk)).status_code == 403
    assert client.post(url("campaign_resume", project, campaign.pk)).status_code == 403
    campaign.refresh_from_db()
    assert not campaign.cancel_requested


def test_it_resumes_a_failed_campaign(client, project, admin, django_capture_on_commit_callbacks):
    campaign = make_campaign(project)
    job_start(job=campaign)
    job_finish(job=campaign, status=JobStatus.FAILED, error="boom")
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("campaign_resume", project, campaign.pk),
                               HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'hx-trigger="every 2s"' in response.content  # polling again
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.QUEUED and campaign.error == "" and campaign.task_id


def test_resuming_a_finished_campaign_is_refused(client, project, admin):
    campaign = finished_campaign(project)
    client.force_login(admin)
    response = client.post(url("campaign_resume", project, campaign.pk), follow=True)
    assert response.status_code == 200
    assert b"Only a failed or cancelled campaign can be resumed." in response.content
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.SUCCEEDED
