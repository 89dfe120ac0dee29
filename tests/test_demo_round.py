"""`manage.py demo_round`: the closed loop from the shell, on the tiny model.

campaign -> every critique approved by the named expert (a stand-in) -> snapshot -> fine-tune
-> held-out evaluation of base and candidate -> promotion -> the next round.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

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
    SnapshotExample,
    TrainingRun,
)
from tests.factories import add_member, login, make_project

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


def test_rounds_attack_the_promoted_learner_on_the_same_held_out_attacks(project, client, capsys):
    expert = add_member(project, Role.EXPERT)
    args = ["demo_round", "--project", project.slug, "--expert", expert.username, "--rounds", "2",
            "--budget", "4", "--strategies", "direct", "--method", "sft", "--epochs", "1",
            "--max-steps", "1", "--eval-budget", "3", "--promote"]

    call_command(*args)

    out = capsys.readouterr().out
    assert out.count("STAND-IN") == 2  # every round says its review is not a human one
    first, second = TrainingRun.objects.select_related("output_version", "snapshot").order_by("pk")
    campaigns = list(Campaign.objects.filter(project=project).order_by("pk"))
    assert [c.name for c in campaigns] == ["Loop round 1", "Loop round 2"]
    # Round 2 attacked the learner round 1 promoted, and trained on every label so far.
    assert campaigns[1].learner_version == first.output_version
    assert second.snapshot.item_count >= first.snapshot.item_count
    second.output_version.refresh_from_db()
    assert second.output_version.status == LearnerVersion.Status.ACTIVE
    # The same held-out attacks in both rounds, none of them in any training snapshot.
    texts = [item["text"] for item in first.evaluation["candidate"]["items"]]
    assert len(texts) == 3
    assert [item["text"] for item in second.evaluation["candidate"]["items"]] == texts
    trained = set(SnapshotExample.objects.values_list("prompt", flat=True))
    assert trained and not trained & set(texts)
    # Round 2's base is round 1's candidate: measured once, its report reused.
    assert second.evaluation["base"] == first.evaluation["candidate"]
    assert "base: the report of an earlier run" in second.log
    assert "Held-out evaluation (3 attacks, the same in every round)" in out
    assert "relative drop" in out

    # The learners page shows both rounds and the chart's points (start, after 1, after 2).
    login(client, add_member(project, Role.VIEWER))
    page = client.get(reverse("annotator:learner_list", args=[project.slug]))
    assert "Rounds on the held-out attacks" in page.content.decode()
    chart = page.context["rounds"]["chart"]
    assert chart["labels"] == ["start", "after 1", "after 2"]
    assert chart["asr"] == [first.evaluation["summary"]["base"]["asr"],
                            first.evaluation["summary"]["candidate"]["asr"],
                            second.evaluation["summary"]["candidate"]["asr"]]

    # Running it again finds both rounds done: nothing is attacked or trained twice.
    call_command(*args)
    assert Campaign.objects.filter(project=project).count() == 2
    assert TrainingRun.objects.count() == 2
    assert f"Campaign {campaigns[0].pk} already finished." in capsys.readouterr().out


def test_a_worse_candidate_is_not_promoted(project, capsys):
    expert = add_member(project, Role.EXPERT)
    call_command("demo_round", "--project", project.slug, "--expert", expert.username,
                 "--budget", "4", "--strategies", "direct", "--method", "sft", "--epochs", "1",
                 "--max-steps", "1", "--eval-budget", "3", "--promote", "never")
    run = TrainingRun.objects.select_related("output_version").get()
    assert run.output_version.status == LearnerVersion.Status.CANDIDATE
    assert run.output_version.metrics["loop"]["promoted"] is False
    assert "kept the active learner" in capsys.readouterr().out
