"""Model endpoints: the API and the admin that manage them, and what jobs do with a dead one.

Where a role has no endpoint everything runs in-process as before (the other campaign tests);
here a role is pointed at a real closed port on this machine, so the job meets a real refused
connection (the tests against a real vLLM server are in tests/vllm/).
"""

from __future__ import annotations

import logging
import socket

import pytest
from django.urls import reverse

from annotator.models import AttackQuery, Campaign, JobStatus, ModelEndpoint, Response
from annotator.services.campaign_runner import campaign_execute
from annotator.services.endpoints import endpoint_delete, endpoint_set
from annotator.services.jobs import job_resume
from tests.factories import add_member, login, make_campaign, make_project, make_user, run_worker

SECRET = "sk-test-7f3a9c1e5b2d4680"  # what must never appear anywhere
KEY_VARIABLE = "SUPERALIGN_TEST_ENDPOINT_KEY"


def url(project, role: str | None = None) -> str:
    base = f"/api/projects/{project.slug}/endpoints/"
    return base if role is None else f"{base}{role}/"


def closed_port_url() -> str:
    """An http URL on this machine where nothing listens (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


JUDGE = {"kind": "openai", "model": "guard-7b", "base_url": "http://gpu-host:8001/v1",
         "api_key_env": KEY_VARIABLE, "max_concurrency": 16, "structured_output": True}


# -- the API ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_admin_sets_reads_changes_and_removes_a_role_endpoint(api, project, admin, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, SECRET)
    api.force_authenticate(admin)
    unset = api.get(url(project, "critic_judge")).json()
    assert unset["configured"] is False and "no judge" in unset["label"]

    created = api.put(url(project, "critic_judge"), JUDGE, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["configured"] is True and body["api_key_env"] == KEY_VARIABLE
    assert body["label"] == "model 'guard-7b' at http://gpu-host:8001/v1"
    assert body["timeout_s"] == 120.0  # left out: the default

    changed = api.patch(url(project, "critic_judge"), {"max_concurrency": 4}, format="json")
    assert changed.status_code == 200 and changed.json()["max_concurrency"] == 4
    assert changed.json()["model"] == "guard-7b"  # PATCH keeps the rest
    listed = api.get(url(project)).json()["results"]
    assert [row["role"] for row in listed] == ["critic_judge"]
    for response in (created, changed, api.get(url(project)), api.get(url(project, "critic_judge"))):
        assert SECRET not in response.content.decode()

    assert api.delete(url(project, "critic_judge")).status_code == 204
    assert not ModelEndpoint.objects.exists()
    assert api.get(url(project, "critic_judge")).json()["configured"] is False


@pytest.mark.django_db
def test_a_get_body_can_be_sent_back_with_put(api, project, admin):
    api.force_authenticate(admin)
    body = api.put(url(project, "attacker_lm"), {**JUDGE, "model": "unaligned"},
                   format="json").json()
    again = api.put(url(project, "attacker_lm"), body, format="json")
    assert again.status_code == 200, again.json()
    assert ModelEndpoint.objects.get().model == "unaligned"


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "field"), [
    ({"kind": "openai", "model": "m", "base_url": "gpu-host:8001"}, "non_field_errors"),
    ({"kind": "openai", "model": "m", "base_url": "http://h/v1", "api_key_env": SECRET},
     "api_key_env"),
    ({"kind": "openai", "model": "m", "base_url": "http://h/v1", "api_key": SECRET}, "api_key"),
    ({"kind": "openai", "model": "m", "base_url": "http://h/v1", "max_concurrency": 0},
     "max_concurrency"),
    ({"kind": "openai", "model": "m", "base_url": "http://h/v1", "defaults": {"model": "x"}},
     "non_field_errors"),
    ({"kind": "remote", "model": "m"}, "kind"),
    ({"kind": "local", "model": "bundled", "structured_output": True}, "structured_output"),
])
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(api, project, admin, payload,
                                                                      field):
    api.force_authenticate(admin)
    endpoint_set(project=project, role="critic_judge", values=JUDGE)
    before = ModelEndpoint.objects.values().get()
    response = api.put(url(project, "critic_judge"), payload, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert SECRET not in response.content.decode()
    assert ModelEndpoint.objects.values().get() == before


@pytest.mark.django_db
def test_a_local_learner_endpoint_is_refused_the_learner_already_runs_here(api, project, admin):
    api.force_authenticate(admin)
    response = api.put(url(project, "learner"), {"kind": "local", "model": "bundled"},
                       format="json")
    assert response.status_code == 400
    assert "learner version" in response.json()["errors"]["kind"][0]
    assert not ModelEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_unknown_role_is_404(api, project, admin):
    api.force_authenticate(admin)
    assert api.get(url(project, "oracle")).status_code == 404
    assert api.put(url(project, "oracle"), JUDGE, format="json").status_code == 404
    assert not ModelEndpoint.objects.exists()


@pytest.mark.django_db
def test_only_admins_of_the_project_manage_endpoints(api, project, expert, outsider):
    endpoint_set(project=project, role="critic_judge", values=JUDGE)
    assert api.get(url(project)).status_code == 401
    api.force_authenticate(expert)
    assert api.get(url(project)).status_code == 403
    assert api.put(url(project, "critic_judge"), {**JUDGE, "model": "x"},
                   format="json").status_code == 403
    assert api.delete(url(project, "critic_judge")).status_code == 403
    api.force_authenticate(outsider)
    assert api.get(url(project, "critic_judge")).status_code == 404
    assert ModelEndpoint.objects.get().model == "guard-7b"


@pytest.mark.django_db
def test_it_rejects_other_methods(api, project, admin):
    api.force_authenticate(admin)
    assert api.post(url(project, "critic_judge"), JUDGE, format="json").status_code == 405
    assert api.put(url(project), JUDGE, format="json").status_code == 405


# -- the admin --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_django_admin_validates_and_saves_an_endpoint(client, project):
    login(client, make_user(is_staff=True, is_superuser=True))
    form = {"project": project.pk, "role": "learner", "kind": "local", "model": "bundled",
            "base_url": "", "api_key_env": "", "max_concurrency": 8, "timeout_s": 120,
            "max_retries": 4, "defaults": "{}", "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00", "updated_at_0": "2026-01-01", "updated_at_1": "00:00:00"}
    add = "/admin/annotator/modelendpoint/add/"
    assert client.get(add).status_code == 200
    refused = client.post(add, form)
    assert refused.status_code == 200 and "learner version" in refused.content.decode()
    refused = client.post(add, {**form, "kind": "openai", "model": "smollm2",
                                "base_url": "http://gpu-host:8001/v1", "api_key_env": SECRET})
    assert "Name the environment variable" in refused.content.decode()
    assert not ModelEndpoint.objects.exists()
    saved = client.post(add, {**form, "kind": "openai", "model": "smollm2",
                              "base_url": "http://gpu-host:8001/v1", "api_key_env": KEY_VARIABLE})
    assert saved.status_code == 302
    assert ModelEndpoint.objects.get().config().label == "model 'smollm2' at http://gpu-host:8001/v1"
    listing = client.get("/admin/annotator/modelendpoint/").content.decode()
    assert "smollm2" in listing and KEY_VARIABLE in listing


# -- jobs with a dead server ------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_dead_learner_server_fails_the_campaign_naming_it_and_resume_loses_nothing(
        tiny, project, admin, monkeypatch, caplog, client):
    monkeypatch.setenv(KEY_VARIABLE, SECRET)
    dead = closed_port_url()
    endpoint_set(project=project, role="learner",
                 values={"kind": "openai", "model": "smollm2", "base_url": dead,
                         "api_key_env": KEY_VARIABLE, "max_retries": 1})
    campaign = make_campaign(project, strategies=["direct", "roleplay"], budget=4, seed=3)
    with caplog.at_level(logging.INFO), pytest.raises(Exception, match="smollm2"):
        campaign_execute(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.FAILED and campaign.can_resume
    assert f"model 'smollm2' at {dead}" in campaign.error
    assert "EndpointError" in campaign.error
    attacks = set(AttackQuery.objects.filter(campaign=campaign).values_list("id", flat=True))
    assert len(attacks) == 4 and not Response.objects.exists()
    login(client, admin)
    page = client.get(reverse("annotator:campaign_detail", args=[project.slug, campaign.pk])).content.decode()
    assert dead in page
    for text in (campaign.error, page, caplog.text):
        assert SECRET not in text

    # The operator points the learner back at this process and resumes: the same attacks are
    # answered once each.
    endpoint_delete(project=project, role="learner")
    job_resume(job=campaign)
    run_worker()
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    assert set(AttackQuery.objects.filter(campaign=campaign).values_list("id", flat=True)) == attacks
    assert Response.objects.filter(attack__campaign=campaign).count() == 4
    usage = Campaign.objects.get(pk=campaign.pk).usage
    assert usage["learner"]["requests"] == 4 and usage["learner"]["completion_tokens"] > 0
    assert "in-process" in usage["learner"]["endpoint"]


@pytest.mark.django_db(transaction=True)
def test_a_dead_judge_fails_the_critique_stage_naming_the_judge(tiny, project, settings):
    settings.CAMPAIGN_CRITIC = "layered"
    dead = closed_port_url()
    endpoint_set(project=project, role="critic_judge",
                 values={"kind": "openai", "model": "guard", "base_url": dead, "max_retries": 0})
    campaign = make_campaign(project, strategies=["direct"], budget=2, seed=1)
    with pytest.raises(Exception, match="guard"):
        campaign_execute(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.FAILED
    assert f"model 'guard' at {dead}" in campaign.error
    # The answers were committed before the critic ran, and the in-process learner's tokens
    # were recorded with them.
    assert Response.objects.filter(attack__campaign=campaign).count() == 2
    assert campaign.usage["learner"]["requests"] == 2


def test_an_endpoint_of_another_project_is_not_used(db):
    mine, other = make_project(), make_project()
    add_member(other)
    endpoint_set(project=other, role="critic_judge", values=JUDGE)
    from annotator.role_models import RoleModels

    assert RoleModels(mine).judge() is None
    assert RoleModels(other).judge() is not None
