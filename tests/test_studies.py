"""Label-source studies end to end on the tiny model: the API and the page launch one, the worker
trains the critic-, expert- and mix-labelled candidates and measures them, the page and the API
show attack success, over-refusal, expert minutes and PGR; cancel, resume, the command, and who
may do what."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from alignment_core.label_study import performance_gap_recovered
from annotator.learner_runtime import _loaded
from annotator.models import ItemState, JobStatus, LabelStudy, ReviewAction, Role
from annotator.services.jobs import job_request_cancel
from annotator.services.label_study import StudySettings, label_study_launch
from annotator.services.review import review_submit
from annotator.services.snapshots import snapshot_create
from tests.factories import add_member, login, make_project, make_review_item
from tests.training_factories import UNSAFE_ANSWERS, curate

pytestmark = pytest.mark.django_db

REFUSAL = "I can't help with that, but I can point you to legitimate help."
TINY = {"method": "dpo", "lora_r": 4, "lora_alpha": 8, "batch_size": 2, "max_length": 64,
        "max_steps": 1, "eval_budget": 3}


def reviewed(project, expert) -> None:
    """Six items one expert reviewed: the critic was right on three (approved, 90 s each) and
    judged the other three answers safe where the expert found them unsafe (120 s each)."""
    for k, (query, response, revision) in enumerate(UNSAFE_ANSWERS):
        critic_right = k < 3
        item = make_review_item(project, query=query, response=response, revision=revision,
                                verdict="unsafe" if critic_right else "safe")
        if critic_right:
            review_submit(item=item, expert=expert, action=ReviewAction.APPROVE, seconds_spent=90)
        else:
            review_submit(item=item, expert=expert, action=ReviewAction.REJECT,
                          reason_code="other", final_verdict="unsafe",
                          corrected_response=REFUSAL, seconds_spent=120)


@pytest.fixture
def tiny(settings, tiny_dir, tmp_path):
    settings.LEARNER_MODEL = str(tiny_dir)
    settings.DATA_DIR = tmp_path / "data"
    _loaded.cache_clear()
    yield tiny_dir
    _loaded.cache_clear()


@pytest.fixture
def project(tiny):
    project = make_project()
    reviewed(project, add_member(project, Role.EXPERT))
    return project


@pytest.fixture
def snapshot(project):
    return snapshot_create(project=project, name="reviewed", validation_fraction=0)


def run_worker() -> None:
    call_command("worker", "--batch", "--interval", "0")


@pytest.mark.django_db(transaction=True)
def test_a_study_trains_measures_and_reports_pgr_through_the_api_and_the_page(
        api, client, project, snapshot, admin):
    api.force_authenticate(admin)
    launched = api.post(f"/api/projects/{project.slug}/studies/",
                        {"snapshot": snapshot.pk, "mix_share": 0.5, **TINY}, format="json")
    assert launched.status_code == 201, launched.json()
    assert launched.json()["status"] == "queued"

    run_worker()

    status = api.get(f"/api/projects/{project.slug}/studies/{launched.json()['id']}/")
    body = status.json()
    assert body["status"] == "succeeded", body["error"]
    rows = {row["name"]: row for row in body["candidates"]}
    assert list(rows) == ["base", "critic", "mix_50", "expert"]
    assert body["results"]["held_out"] == rows["base"]["asr_n"] + rows["base"]["over_refusal_n"]
    # The expert minutes behind each candidate come from the reviews' time: 3 x 90 s + 3 x 120 s.
    assert rows["critic"]["expert_labels"] == 0 and rows["critic"]["expert_minutes"] == 0
    assert rows["expert"]["expert_labels"] == 6 and rows["expert"]["expert_minutes"] == 10.5
    assert rows["mix_50"]["expert_labels"] == 3
    assert 4.5 <= rows["mix_50"]["expert_minutes"] <= 6.0
    # PGR is computed from the figures shown, for every candidate (or said to be undefined).
    base, expert = rows["base"]["asr"], rows["expert"]["asr"]
    for name in ("critic", "mix_50", "expert"):
        gap = performance_gap_recovered(base, rows[name]["asr"], expert, lower_is_better=True)
        assert (rows[name]["pgr"], rows[name]["pgr_reason"]) == (gap.value, gap.reason)
    assert (body["pgr"], body["pgr_reason"]) == (rows["critic"]["pgr"], rows["critic"]["pgr_reason"])
    study = LabelStudy.objects.get()
    for name in ("critic", "mix_50", "expert"):
        assert (study.arm_dir(name) / "adapter_model.safetensors").is_file()

    login(client, admin)
    page = client.get(study.get_absolute_url()).content.decode()
    assert "performance gap recovered" in page
    assert 'id="study-chart-data"' in page and "loop_charts.js" in page
    assert "10.5" in page  # the expert candidate's minutes
    shown = f"{body['pgr']:.2f}" if body["pgr"] is not None else f"undefined, {body['pgr_reason']}"
    assert shown.replace("'", "&#x27;") in page


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_study_resumes_and_keeps_what_it_finished(project, snapshot, admin):
    study = label_study_launch(project=project, snapshot=snapshot, settings=StudySettings(**TINY),
                               created_by=admin)
    job_request_cancel(job=study)
    run_worker()
    study.refresh_from_db()
    assert study.status == JobStatus.CANCELLED and not study.results.get("base")

    call_command("label_study", "--project", project.slug, "--resume", str(study.pk))
    study.refresh_from_db()
    assert study.status == JobStatus.SUCCEEDED
    adapter = study.arm_dir("critic") / "adapter_model.safetensors"
    written = adapter.stat().st_mtime_ns

    # A crash after the last candidate was measured: the resumed job only writes the report.
    report = study.results.pop("report")
    LabelStudy.objects.filter(pk=study.pk).update(results=study.results, status=JobStatus.FAILED)
    call_command("label_study", "--project", project.slug, "--resume", str(study.pk))
    study.refresh_from_db()
    assert study.status == JobStatus.SUCCEEDED
    assert study.results["report"] == report
    assert adapter.stat().st_mtime_ns == written  # not trained again


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_a_study_and_prints_its_table(project, snapshot, capsys):
    call_command("label_study", "--project", project.slug, "--snapshot", str(snapshot.pk),
                 "--mix-share", "0.5", "--method", "sft", "--lora-r", "4", "--lora-alpha", "8",
                 "--batch-size", "2", "--max-length", "64", "--max-steps", "1",
                 "--eval-budget", "3")
    out = capsys.readouterr().out
    assert "critic labels" in out and "mix (50% expert)" in out and "expert labels" in out
    assert "PGR of the critic's labels:" in out
    assert LabelStudy.objects.get().status == JobStatus.SUCCEEDED


# -- launching: the form, bad input, access ---------------------------------------------------


def test_the_form_offers_the_declared_settings_and_launches(client, project, snapshot, admin):
    login(client, admin)
    url = reverse("annotator:study_new", args=[project.slug])
    form = client.get(url).context["form"]
    assert form["mix_share"].value() == 0.5
    assert form["eval_budget"].value() == 128
    assert form["objective"].value() == "sigmoid"

    data = {"snapshot": snapshot.pk, "mix_share": "0.25", "mix_seed": "1", "eval_budget": "3",
            "method": "dpo", "lora_r": "4", "lora_alpha": "8", "lora_dropout": "0",
            "target_modules": "q_proj, v_proj", "learning_rate": "", "epochs": "1",
            "batch_size": "2", "max_length": "64", "beta": "0.1", "objective": "ipo",
            "label_smoothing": "0", "seed": "0", "checkpoint_every": "10", "max_steps": "1"}
    response = client.post(url, data)
    study = LabelStudy.objects.get()
    assert response.status_code == 302 and response["Location"] == study.get_absolute_url()
    assert (study.mix_share, study.seed, study.eval_budget) == (0.25, 1, 3)
    assert study.config["objective"] == "ipo"
    assert study.results == {"items": 6}

    bad = client.post(url, {**data, "mix_share": "1", "objective": "ipo", "label_smoothing": "0.2"})
    assert bad.status_code == 200
    errors = bad.context["form"].errors
    assert "below 1" in errors["mix_share"][0]
    assert LabelStudy.objects.count() == 1


def test_cross_setting_errors_are_form_errors_not_server_errors(client, project, snapshot, admin):
    login(client, admin)
    data = {"snapshot": snapshot.pk, "mix_share": "0.5", "mix_seed": "0", "eval_budget": "3",
            "method": "dpo", "lora_r": "4", "lora_alpha": "8", "lora_dropout": "0",
            "target_modules": "q_proj", "learning_rate": "", "epochs": "1", "batch_size": "2",
            "max_length": "64", "beta": "0.1", "objective": "ipo", "label_smoothing": "0.2",
            "seed": "0", "checkpoint_every": "10", "max_steps": "1"}
    response = client.post(reverse("annotator:study_new", args=[project.slug]), data)
    assert response.status_code == 200
    assert "Label smoothing applies to the sigmoid and robust objectives" in response.content.decode()
    assert not LabelStudy.objects.exists()


def test_a_snapshot_without_expert_labels_is_refused(api):
    project = make_project()
    add_member(project, Role.ADMIN)
    for query, response, final in UNSAFE_ANSWERS[:3]:
        curate(project, query, response, final, state=ItemState.AUTO_ACCEPTED)
    snapshot = snapshot_create(project=project, name="critic only", validation_fraction=0)
    api.force_authenticate(project.memberships.get(role=Role.ADMIN).user)
    response = api.post(f"/api/projects/{project.slug}/studies/",
                        {"snapshot": snapshot.pk, **TINY}, format="json")
    assert response.status_code == 400
    assert "0 expert-labelled items" in response.json()["detail"]
    assert not LabelStudy.objects.exists()


def test_dpo_needs_a_pair_in_every_arm(api):
    project = make_project()
    add_member(project, Role.ADMIN)
    expert = add_member(project, Role.EXPERT)
    for query, response, revision in UNSAFE_ANSWERS[:2]:
        # The critic judged the answers safe: its labels keep the learner's own answers.
        item = make_review_item(project, query=query, response=response, revision=revision,
                                verdict="safe")
        review_submit(item=item, expert=expert, action=ReviewAction.REJECT, reason_code="other",
                      final_verdict="unsafe", corrected_response=REFUSAL)
    snapshot = snapshot_create(project=project, name="s", validation_fraction=0)
    api.force_authenticate(project.memberships.get(role=Role.ADMIN).user)
    response = api.post(f"/api/projects/{project.slug}/studies/",
                        {"snapshot": snapshot.pk, **TINY}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["method"][0].startswith("The critic's labels give no "
                                                             "preference pair")


def test_the_pages_show_a_running_study_in_full_and_as_a_fragment(client, project, snapshot, admin):
    study = label_study_launch(project=project, snapshot=snapshot, settings=StudySettings(**TINY),
                               enqueue=False)
    login(client, admin)
    listing = client.get(reverse("annotator:study_list", args=[project.slug])).content.decode()
    assert f"Study {study.pk}" in listing and "Launch a study" in listing

    page = client.get(study.get_absolute_url())
    body = page.content.decode()
    assert page.status_code == 200 and "<html" in body
    assert "critic labels" in body and "mix (50% expert)" in body and 'hx-trigger="every 2s"' in body
    fragment = client.get(study.get_absolute_url() + "?poll=1", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'id="study-status"' in fragment.content.decode()

    cancel = client.post(reverse("annotator:study_cancel", args=[project.slug, study.pk]),
                         HTTP_HX_REQUEST="true")
    assert cancel.status_code == 200 and "Cancelled" in cancel.content.decode()
    finished = client.get(study.get_absolute_url() + "?poll=1", HTTP_HX_REQUEST="true")
    assert finished.headers.get("HX-Refresh") == "true"  # the results need the full page


def test_experts_and_viewers_cannot_launch_or_cancel(client, project, snapshot):
    study = label_study_launch(project=project, snapshot=snapshot, settings=StudySettings(**TINY),
                               enqueue=False)
    login(client, add_member(project, Role.EXPERT))
    assert client.get(reverse("annotator:study_new", args=[project.slug])).status_code == 403
    assert client.post(reverse("annotator:study_cancel",
                               args=[project.slug, study.pk])).status_code == 403
    assert client.get(study.get_absolute_url()).status_code == 200  # members may read it
    study.refresh_from_db()
    assert study.status == JobStatus.QUEUED


def test_the_study_views_reject_wrong_methods(client, api, project, snapshot, admin):
    study = label_study_launch(project=project, snapshot=snapshot, settings=StudySettings(**TINY),
                               enqueue=False)
    login(client, admin)
    assert client.get(reverse("annotator:study_cancel",
                              args=[project.slug, study.pk])).status_code == 405
    assert client.post(study.get_absolute_url()).status_code == 405
    assert client.post(reverse("annotator:study_list", args=[project.slug])).status_code == 405
    api.force_authenticate(admin)
    assert api.delete(f"/api/projects/{project.slug}/studies/{study.pk}/").status_code == 405
    assert api.get(f"/api/projects/{project.slug}/studies/{study.pk}/cancel/").status_code == 405


def test_the_api_refuses_experts_and_hides_other_projects(api, project, snapshot):
    study = label_study_launch(project=project, snapshot=snapshot, settings=StudySettings(**TINY),
                               enqueue=False)
    api.force_authenticate(add_member(project, Role.EXPERT))
    assert api.post(f"/api/projects/{project.slug}/studies/",
                    {"snapshot": snapshot.pk}, format="json").status_code == 403
    assert api.post(f"/api/projects/{project.slug}/studies/{study.pk}/cancel/").status_code == 403
    assert api.get(f"/api/projects/{project.slug}/studies/").status_code == 200
    api.force_authenticate(add_member(make_project(), Role.ADMIN))
    assert api.get(f"/api/projects/{project.slug}/studies/{study.pk}/").status_code == 404


def test_the_command_explains_what_is_missing(project):
    with pytest.raises(CommandError, match="Name the snapshot"):
        call_command("label_study", "--project", project.slug)
    with pytest.raises(CommandError, match="No snapshot 999"):
        call_command("label_study", "--project", project.slug, "--snapshot", "999")
