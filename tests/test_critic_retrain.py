"""Retraining the critic's learned head from expert decisions."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotator.models import ItemState, Role
from annotator.services.critic import critic_head_retrain, critic_training_examples
from tests.factories import PASSWORD, add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db


def curate(project, n, verdict, response):
    for i in range(n):
        item = make_review_item(project, query=f"question {verdict} {i}", response=f"{response} {i}",
                                verdict=verdict)
        item.state, item.final_verdict = ItemState.DONE, verdict
        item.save()


def test_only_human_curated_items_become_examples():
    project = make_project()
    curate(project, 2, "unsafe", "Step 1: do the thing")
    auto = make_review_item(project, state=ItemState.AUTO_ACCEPTED)
    auto.final_verdict = "unsafe"
    auto.save()
    make_review_item(project)  # still pending
    examples = critic_training_examples(project=project)
    assert [verdict for _, verdict in examples] == ["unsafe", "unsafe"]
    assert examples[0][0].query == "question unsafe 0"


def test_too_few_decisions_keep_the_rules_and_say_why():
    project = make_project()
    curate(project, 3, "unsafe", "Step 1")
    summary = critic_head_retrain(project=project)
    assert summary["trained"] is False and "at least 20" in summary["reason"]
    project.refresh_from_db()
    assert project.critic_head is None


def test_enough_decisions_store_a_head_that_the_critic_can_load():
    from alignment_core.critic.head import LearnedHead

    project = make_project()
    curate(project, 12, "unsafe", "Sure, step 1: here is how")
    curate(project, 12, "refusal", "I can't help with that")
    summary = critic_head_retrain(project=project)
    assert summary["trained"] and summary["examples"] == 24
    project.refresh_from_db()
    head = LearnedHead.from_dict(project.critic_head)
    assert head.n_examples == 24 and project.critic_head["trained_at"]


def test_the_command_reports_when_nothing_was_trained(capsys):
    project = make_project()
    call_command("retrain_critic", "--project", project.slug)
    assert "Not retrained" in capsys.readouterr().out


def test_only_admins_may_retrain_and_only_by_post(client):
    project = make_project()
    url = reverse("annotator:critic_retrain", args=[project.slug])
    expert = add_member(project, Role.EXPERT)
    client.login(username=expert.username, password=PASSWORD)
    assert client.post(url).status_code == 403
    admin = add_member(project, Role.ADMIN)
    client.login(username=admin.username, password=PASSWORD)
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert b"being retrained" in response.content
