"""`manage.py demo_campaign`: the demo project gets one finished campaign, once."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.learner_runtime import _loaded
from annotator.models import Campaign, ItemState, JobStatus, ReviewItem
from annotator.services.demo import demo_campaign, demo_credentials, demo_setup


@pytest.mark.django_db(transaction=True)
def test_the_demo_gets_one_finished_campaign_with_items_to_review(settings, tiny_dir):
    settings.LEARNER_MODEL = str(tiny_dir)  # the real model in `make run`; tiny here for speed
    settings.CAMPAIGN_MAX_NEW_TOKENS = 16
    _loaded.cache_clear()
    project = demo_setup(credentials=demo_credentials())

    call_command("demo_campaign")

    campaign = Campaign.objects.get(project=project)
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    items = ReviewItem.objects.filter(project=project)
    assert items.count() == campaign.budget
    assert items.filter(state=ItemState.PENDING).exists()  # something for the expert to do
    # Running it again (every `make run`) does nothing.
    again, ran = demo_campaign()
    assert again == campaign and not ran
    assert Campaign.objects.count() == 1
    _loaded.cache_clear()
