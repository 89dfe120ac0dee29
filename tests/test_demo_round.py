"""`manage.py demo_round`: the whole loop from the shell, on the tiny model.

campaign -> every critique approved by the named expert -> snapshot -> fine-tune -> held-out
evaluation of base and candidate.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from annotator.learner_runtime import _loaded
from annotator.models import (
    Campaign,
    ItemState,
    JobStatus,
    LearnerVersion,
    Review,
    ReviewAction,
    ReviewItem,
    Role,
    TrainingRun,
)
from tests.factories import add_member, make_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def project(settings, tiny_dir, tmp_path):
    settings.LEARNER_MODEL = str(tiny_dir)
    settings.DATA_DIR = tmp_path / "data"
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_MAX_NEW_TOKENS = 8
    settings.CAMPAIGN_CRITIC = "rules"
    _loaded.cache_clear()
    yield make_project()
    _loaded.cache_clear()


def test_a_round_attacks_curates_trains_and_compares(project, capsys):
    expert = add_member(project, Role.EXPERT)

    call_command("demo_round", "--project", project.slug, "--expert", expert.username,
                 "--budget", "4", "--strategies", "direct", "--method", "sft",
                 "--epochs", "1", "--max-steps", "1", "--eval-budget", "2", "--promote")

    out = capsys.readouterr().out
    campaign = Campaign.objects.get(project=project)
    assert campaign.status == JobStatus.SUCCEEDED
    items = ReviewItem.objects.filter(critique__response__attack__campaign=campaign)
    assert items.exists()
    assert not items.filter(state=ItemState.PENDING).exists()
    reviews = Review.objects.filter(item__in=items)
    assert reviews.count() == items.count()
    assert set(reviews.values_list("expert", "action").distinct()) == {
        (expert.pk, ReviewAction.APPROVE)
    }
    assert f"Approved {items.count()} items." in out
    run = TrainingRun.objects.select_related("output_version").get(project=project)
    assert run.status == JobStatus.SUCCEEDED
    assert run.output_version.status == LearnerVersion.Status.ACTIVE
    assert "Held-out evaluation" in out and "candidate" in out


def test_the_expert_must_be_an_expert_of_the_project(project):
    viewer = add_member(project, Role.VIEWER)

    with pytest.raises(CommandError, match="is not an expert"):
        call_command("demo_round", "--project", project.slug, "--expert", viewer.username)
    with pytest.raises(CommandError, match="is not an expert"):
        call_command("demo_round", "--project", project.slug, "--expert", "nobody")
    assert not Campaign.objects.exists()
