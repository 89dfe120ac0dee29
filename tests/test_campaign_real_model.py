"""A small campaign on the real SmolLM2 model, through the worker: real answers, real critiques."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.learner_runtime import _loaded
from annotator.models import Critique, JobStatus, ReviewItem, Role
from annotator.services.campaigns import campaign_launch
from tests.factories import add_member, make_project


@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_a_small_campaign_on_the_real_model_queues_critiqued_answers(settings, real_model_dir):
    settings.LEARNER_MODEL = str(real_model_dir)
    settings.CAMPAIGN_MAX_NEW_TOKENS = 32  # keeps the test near 30 s on two idle cores
    _loaded.cache_clear()
    project = make_project()
    campaign = campaign_launch(project=project, user=add_member(project, Role.ADMIN),
                               strategies=["direct", "roleplay"], budget=4, seed=1)

    call_command("worker", "--batch", "--interval", "0")

    campaign.refresh_from_db()
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    critiques = list(Critique.objects.filter(response__attack__campaign=campaign)
                     .select_related("response"))
    assert len(critiques) == 4
    for critique in critiques:
        assert len(critique.response.text.split()) >= 3  # the real model writes words
        assert critique.explanation and critique.verdict in {"safe", "unsafe", "refusal",
                                                             "over_refusal"}
    assert ReviewItem.objects.filter(project=project).count() == 4
    assert campaign.report["n_responses"] == 4
    _loaded.cache_clear()
