"""The app with a served learner: a campaign answered through the real vLLM, its tokens on the
campaign's page and API, and promotion loading the version's adapter into the server (registered
again after a restart before the next request; roll back switching back)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from alignment_core.endpoints import loaded_adapters
from annotator.models import Critique, JobStatus, LearnerVersion, Response
from annotator.role_models import served_adapter
from annotator.services.campaign_runner import campaign_execute
from annotator.services.endpoints import endpoint_set
from annotator.services.learners import learner_promote, learner_roll_back
from scripts.vllm_server import VllmServer
from tests.factories import active_learner, login, make_campaign
from tests.vllm.conftest import START_TIMEOUT_S

pytestmark = [pytest.mark.vllm, pytest.mark.django_db(transaction=True)]


def serve_learner(project, vllm: VllmServer) -> None:
    config = vllm.endpoint(max_concurrency=8, max_retries=1)
    endpoint_set(project=project, role="learner",
                 values={"kind": "openai", "model": config.model, "base_url": config.base_url,
                         "max_concurrency": 8, "max_retries": 1})


def answers(campaign) -> list[str]:
    return list(Response.objects.filter(attack__campaign=campaign).values_list("text", flat=True))


def test_a_campaign_is_answered_and_judged_through_vllm_and_its_tokens_are_shown(
        vllm: VllmServer, project, admin, settings, client, api):
    settings.CAMPAIGN_CRITIC = "layered"
    settings.CAMPAIGN_MAX_NEW_TOKENS = 24
    serve_learner(project, vllm)
    # The same server judges too (a real deployment would serve a guard model), its output
    # constrained to the vote's JSON schema.
    endpoint_set(project=project, role="critic_judge",
                 values={"kind": "openai", "model": vllm.served_name, "base_url": vllm.base_url,
                         "structured_output": True, "max_retries": 1})
    campaign = make_campaign(project, strategies=["direct", "roleplay"], budget=6, seed=2)
    campaign_execute(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    assert len(answers(campaign)) == 6 and all(text.strip() for text in answers(campaign))
    learner = campaign.usage["learner"]
    assert learner["requests"] == 6 and 0 < learner["completion_tokens"] <= 6 * 24
    assert learner["prompt_tokens"] > 0 and vllm.base_url in learner["endpoint"]
    # The judge was asked about every answer; its votes (where they parsed) are stored with
    # the critiques for the head to learn its weight from.
    assert campaign.usage["critic_judge"]["requests"] == 6
    critiques = Critique.objects.filter(response__attack__campaign=campaign)
    assert critiques.count() == 6
    assert all("+judge" in critique.critic_version for critique in critiques)

    login(client, admin)
    page = client.get(reverse("annotator:campaign_detail", args=[project.slug, campaign.pk]))
    assert "Models and tokens spent" in page.content.decode()
    assert vllm.base_url in page.content.decode()
    api.force_authenticate(admin)
    body = api.get(f"/api/projects/{project.slug}/campaigns/{campaign.pk}/").json()
    assert body["usage"]["learner"]["requests"] == 6


def test_promotion_loads_the_adapter_and_roll_back_switches_back(
        vllm: VllmServer, project, admin, settings, pineapple_adapter: Path, tmp_path: Path):
    settings.CAMPAIGN_CRITIC = "rules"
    settings.CAMPAIGN_MAX_NEW_TOKENS = 16
    settings.DATA_DIR = tmp_path
    shutil.copytree(pineapple_adapter, tmp_path / "adapters" / "pineapple")
    serve_learner(project, vllm)
    base = active_learner(project)
    candidate = LearnerVersion.objects.create(project=project, name="pineapple",
                                              base_model=base.base_model,
                                              adapter_path="adapters/pineapple")
    adapter = served_adapter(candidate)

    learner_promote(version=candidate, user=admin)
    assert loaded_adapters(vllm.endpoint()) == {adapter.name: adapter.path}
    # The server restarts and forgets run-time adapters: the next campaign registers the active
    # one again before its first request.
    vllm.stop()
    vllm.start(timeout=START_TIMEOUT_S)
    assert loaded_adapters(vllm.endpoint()) == {}
    tuned = make_campaign(project, budget=4, seed=5)  # against the active version: the candidate
    campaign_execute(campaign=tuned)
    tuned.refresh_from_db()
    assert tuned.status == JobStatus.SUCCEEDED, tuned.error
    assert all("pineapple" in text.lower() for text in answers(tuned))
    assert adapter.name in tuned.usage["learner"]["endpoint"]
    assert loaded_adapters(vllm.endpoint()) == {adapter.name: adapter.path}

    learner_roll_back(project=project, user=admin)
    assert active_learner(project) == base
    assert loaded_adapters(vllm.endpoint()) == {}
    back = make_campaign(project, budget=4, seed=5)
    campaign_execute(campaign=back)
    assert not any("pineapple" in text.lower() for text in answers(back))
