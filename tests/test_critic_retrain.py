"""Retraining the critic's learned head from expert decisions."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from annotator.models import ItemState, Role
from annotator.services.critic import critic_head_retrain, critic_training_examples
from tests.factories import (
    PASSWORD,
    add_member,
    make_project,
    make_review_item,
    review_real_answers,
)

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


# -- on real human-labelled answers: calibration, the learning curve, votes, the pages ----------

LABELLED = 48  # enough for the head's own cross-validated calibrator (MIN_CV = 40)


def test_a_retrain_fits_the_calibration_and_records_a_held_out_point():
    from alignment_core.critic import LearnedHead
    from annotator.models import CriticRetrain

    project = make_project()
    expert = add_member(project, Role.EXPERT)
    review_real_answers(project, expert, LABELLED)
    summary = critic_head_retrain(project=project)
    assert summary["trained"] and summary["examples"] == LABELLED
    project.refresh_from_db()
    head = LearnedHead.from_dict(project.critic_head)
    # The calibrator was fitted on the head's cross-validated predictions of these decisions.
    assert head.calibrator.n == LABELLED and head.calibrator.method in ("identity", "platt",
                                                                        "isotonic")
    [point] = CriticRetrain.objects.filter(project=project)
    assert point.labels == LABELLED and point.trigger == "manual"
    assert 0.0 <= point.ece <= 1.0 and 0.25 <= point.accuracy <= 1.0
    assert project.critic_head["holdout_accuracy"] == point.accuracy
    assert point.calibration == head.calibrator.method


def test_a_judges_stored_votes_get_a_learned_weight():
    from alignment_core.critic import LearnedHead

    project = make_project()
    expert = add_member(project, Role.EXPERT)
    review_real_answers(project, expert, LABELLED, judge=True)
    assert critic_head_retrain(project=project)["trained"]
    project.refresh_from_db()
    head = LearnedHead.from_dict(project.critic_head)
    # A judge right 90% of the time earns more than the default weight of 1.
    assert head.voters["judge"] > 1.0


def test_the_agreement_page_shows_the_reliability_diagram_and_the_ece(client):
    from alignment_core.critic import expected_calibration_error

    project = make_project()
    expert = add_member(project, Role.EXPERT)
    pairs = review_real_answers(project, expert, LABELLED)
    critic_head_retrain(project=project)
    viewer = add_member(project, Role.VIEWER)
    client.login(username=viewer.username, password=PASSWORD)
    url = reverse("annotator:review_stats", args=[project.slug])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    ece = expected_calibration_error([c.confidence for _, c in pairs],
                                     [c.verdict == row.verdict for row, c in pairs])
    assert f'id="calibration-ece">{ece:.3f}<' in html
    assert 'data-chart="reliability"' in html and 'data-chart="learning"' in html
    assert 'id="critic-chart-data"' in html and "js/agreement.js" in html
    assert f"<td>{LABELLED}</td>" in html  # the learning curve's point
    chart = page.context["chart_data"]
    assert sum(page.context["calibration"]["bins"][k]["n"] for k in range(10)) == LABELLED
    assert len(chart["learning"]["labels"]) == 1 and chart["learning"]["labels"][0] == LABELLED
    # htmx refreshes the calibration card alone.
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert text.lstrip().startswith('<section class="card" id="calibration">')
    assert "<html" not in text and "Review progress and agreement" not in text
    assert client.post(url).status_code == 405


def test_the_agreement_page_without_decisions_says_so(client):
    project = make_project()
    viewer = add_member(project, Role.VIEWER)
    client.login(username=viewer.username, password=PASSWORD)
    page = client.get(reverse("annotator:review_stats", args=[project.slug]))
    assert page.status_code == 200 and b'id="calibration-empty"' in page.content


def test_the_critic_api_gives_calibration_and_the_learning_curve(api):
    from tests.factories import bearer

    project = make_project()
    expert = add_member(project, Role.EXPERT)
    review_real_answers(project, expert, 24)
    critic_head_retrain(project=project)
    url = reverse("api:critic_detail", args=[project.slug])
    data = api.get(url, **bearer(expert)).json()
    assert data["calibration"]["n"] == 24 and len(data["calibration"]["bins"]) == 10
    assert 0 <= data["calibration"]["ece"] <= 1
    [point] = data["learning_curve"]
    assert point["labels"] == 24 and point["trigger"] == "manual"
    assert data["learning"]["new_decisions"] == 0
    assert data["auto_accept"]["threshold"] is None
    assert api.post(url, **bearer(expert)).status_code == 405
    outsider = add_member(make_project(), Role.ADMIN)
    assert api.get(url, **bearer(outsider)).status_code == 404


def test_the_retrain_api_needs_an_admin_and_enqueues(api, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    from tests.factories import bearer

    project = make_project()
    url = reverse("api:critic_retrain", args=[project.slug])
    expert = add_member(project, Role.EXPERT)
    admin = add_member(project, Role.ADMIN)
    assert api.post(url, **bearer(expert)).status_code == 403
    assert api.get(url, **bearer(admin)).status_code == 405
    path = "annotator.tasks.critic.retrain_critic_head"
    if settings.TASKS_BACKEND == "rq":
        import django_rq

        queue = django_rq.get_queue("default")
        before = set(queue.job_ids)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(url, **bearer(admin)).status_code == 202
    expected = {"project_id": project.pk, "trigger": "manual"}
    if settings.TASKS_BACKEND == "rq":
        [job] = [queue.fetch_job(i) for i in set(queue.job_ids) - before]
        assert job.func_name == path and job.kwargs == expected
    else:
        task = DBTaskResult.objects.get(task_path=path)
        assert task.args_kwargs["kwargs"] == expected
