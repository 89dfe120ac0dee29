"""Training pages: list, launch form, live progress (full page and htmx), cancel, resume, logs,
and the base-vs-candidate comparison."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotator.models import JobStatus, Role, TrainingRun
from annotator.services.jobs import job_start
from annotator.services.learners import learner_register_candidate
from annotator.services.snapshots import snapshot_create
from tests.factories import login, login_as, make_project
from tests.training_factories import curate_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project()
    curate_many(project, 4)
    return project


@pytest.fixture
def admin(admin, client):
    """The project's admin, logged in."""
    login(client, admin)
    return admin


def form_data(snapshot, **extra) -> dict:
    data = {"snapshot": snapshot.pk, "method": "dpo", "lora_r": 16, "lora_alpha": 32,
            "lora_dropout": 0.05, "target_modules": "q_proj, v_proj", "learning_rate": "",
            "epochs": 1, "batch_size": 4, "max_length": 384, "beta": 0.1, "objective": "sigmoid",
            "label_smoothing": 0, "seed": 0, "checkpoint_every": 10, "max_steps": "",
            "eval_budget": 16}
    data.update(extra)
    return data


def test_the_list_shows_runs_and_snapshots(client, project, run):
    login_as(client, project, Role.VIEWER)
    response = client.get(reverse("annotator:training_list", args=[project.slug]))
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Run {run.pk}" in body and "first" in body
    assert "Launch a fine-tune" not in body  # viewers cannot launch
    assert reverse("annotator:training_list", args=[project.slug]) in body  # the nav entry


def test_the_launch_form_has_the_core_defaults(client, project, snapshot, admin):
    response = client.get(reverse("annotator:training_new", args=[project.slug]))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["lora_r"].value() == 16
    assert form["target_modules"].value() == "q_proj, k_proj, v_proj, o_proj"
    assert form["eval_budget"].value() == 16


def test_it_launches_a_run(client, project, snapshot, admin):
    response = client.post(reverse("annotator:training_new", args=[project.slug]),
                           form_data(snapshot, method="sft_dpo", max_steps=3))
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert run.method == "sft_dpo"
    assert run.config["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert run.config["max_steps"] == 3
    assert run.config["meta"]["snapshot_hash"] == snapshot.content_hash
    assert run.created_by == admin


def test_it_shows_clear_form_errors(client, project, snapshot, admin):
    response = client.post(reverse("annotator:training_new", args=[project.slug]),
                           form_data(snapshot, lora_r=0, target_modules="q_proj; drop table"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "between 1 and 256" in errors["lora_r"][0]
    assert "target_modules" in errors
    assert not TrainingRun.objects.exists()


def test_dpo_without_pairs_is_a_form_error(client, project, admin):
    for item in project.review_items.select_related("critique__response"):
        item.final_response = item.critique.response.text
        item.save(update_fields=["final_response"])
    snapshot = snapshot_create(project=project, name="no pairs", validation_fraction=0)
    response = client.post(reverse("annotator:training_new", args=[project.slug]),
                           form_data(snapshot, method="dpo"))
    assert response.status_code == 200
    assert "DPO needs at least one preference pair" in response.content.decode()


def test_launching_requires_admin(client, project, snapshot):
    login_as(client, project, Role.EXPERT)
    url = reverse("annotator:training_new", args=[project.slug])
    assert client.get(url).status_code == 403
    assert client.post(url, form_data(snapshot)).status_code == 403


def test_the_detail_page_shows_live_progress_and_polls_while_active(client, project, run):
    login_as(client, project, Role.VIEWER)
    job_start(job=run, stage="train")
    TrainingRun.objects.filter(pk=run.pk).update(
        progress={"train": {"done": 2, "total": 8, "remaining_s": 30.0}},
        loss_history=[{"step": 1, "phase": "dpo", "loss": 0.69, "reward_accuracy": 0.5,
                       "reward_margin": 0.01, "tokens_per_s": 120.0},
                      {"step": 2, "phase": "dpo", "loss": 0.6, "reward_accuracy": 0.75,
                       "reward_margin": 0.2, "tokens_per_s": 130.0}])
    url = reverse("annotator:training_detail", args=[project.slug, run.pk])

    page = client.get(url).content.decode()
    assert "uPlot.iife.min.js" in page and "js/training.js" in page
    assert 'id="training-loss-data"' in page and '"loss": [0.69, 0.6]' in page
    assert "2 / 8" in page and "75%" in page and "130.0" in page
    assert 'hx-trigger="every 2s"' in page
    assert "Cancel" not in page  # viewers see no actions

    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="training-progress"')
    assert "<html" not in partial


def test_a_finished_run_stops_polling(client, project, run):
    login_as(client, project, Role.VIEWER)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED)
    page = client.get(reverse("annotator:training_detail", args=[project.slug, run.pk]))
    assert 'hx-trigger="every 2s"' not in page.content.decode()


def test_an_admin_cancels_and_resumes(client, project, run, admin):
    cancel = reverse("annotator:training_cancel", args=[project.slug, run.pk])
    response = client.post(cancel, HTTP_HX_REQUEST="true")
    run.refresh_from_db()
    assert response.status_code == 200
    assert run.status == JobStatus.CANCELLED  # it was still queued
    assert "Resume from checkpoint" in response.content.decode()

    response = client.post(reverse("annotator:training_resume", args=[project.slug, run.pk]))
    run.refresh_from_db()
    assert response.status_code == 302
    assert run.status == JobStatus.QUEUED and not run.cancel_requested


def test_resuming_a_queued_run_is_refused_with_a_message(client, project, run, admin):
    response = client.post(reverse("annotator:training_resume", args=[project.slug, run.pk]),
                           follow=True)
    assert "Only a failed or cancelled training run can be resumed" in response.content.decode()


def test_cancel_and_resume_require_admin_and_post(client, project, run):
    login_as(client, project, Role.EXPERT)
    for name in ("training_cancel", "training_resume"):
        url = reverse(f"annotator:{name}", args=[project.slug, run.pk])
        assert client.post(url).status_code == 403
        assert client.get(url).status_code == 405


def test_the_log_page_escapes_lines(client, project, run):
    login_as(client, project, Role.VIEWER)
    TrainingRun.objects.filter(pk=run.pk).update(log="[10:00:00] step <b>1</b>\n")
    url = reverse("annotator:training_log", args=[project.slug, run.pk])
    body = client.get(url).content.decode()
    assert "step &lt;b&gt;1&lt;/b&gt;" in body
    assert client.get(url, HTTP_HX_REQUEST="true").content.decode().lstrip().startswith("<pre")


def test_the_comparison_shows_base_and_candidate_with_intervals(client, project, run, admin):
    learner_register_candidate(run=run, metrics={"val_loss": 1.25, "val_reward_accuracy": 0.5})

    def report(rate, lo, hi, response):
        group = {"rate": rate, "lo": lo, "hi": hi, "n": 4, "count": int(rate * 4)}
        return {"overall": group, "refusal": group, "over_refusal": group,
                "by_strategy": {"direct": group}, "by_category": {}, "n_attacks": 4,
                "items": [{"text": "attack <i>x</i>", "strategy": "direct", "category": "c",
                           "is_benign": False, "response": response, "verdict": "unsafe"}],
                "version": {"id": 1, "name": "v"}}
    TrainingRun.objects.filter(pk=run.pk).update(evaluation={
        "n_attacks": 4, "held_out_seed": 1,
        "base": report(0.75, 0.5, 1.0, "base <b>says</b>"),
        "candidate": report(0.25, 0.0, 0.5, "candidate says"),
        "summary": {"base": {}, "candidate": {}}})
    body = client.get(reverse("annotator:training_compare", args=[project.slug, run.pk])).content.decode()
    assert "75.0%" in body and "25.0%" in body and "[50%–100%]" in body
    assert "-50.0%" in body
    assert "base &lt;b&gt;says&lt;/b&gt;" in body and "attack &lt;i&gt;x&lt;/i&gt;" in body
    assert "1.2500" in body
    assert "Promote run-" in body


def test_the_comparison_says_when_there_is_no_evaluation(client, project, run):
    login_as(client, project, Role.VIEWER)
    body = client.get(reverse("annotator:training_compare", args=[project.slug, run.pk])).content.decode()
    assert "No evaluation yet" in body


def test_it_hides_other_projects(client, project, run):
    other = make_project()
    login_as(client, other, Role.ADMIN)
    for name in ("training_detail", "training_log", "training_compare"):
        assert client.get(reverse(f"annotator:{name}", args=[project.slug, run.pk])).status_code == 404
        assert client.get(reverse(f"annotator:{name}", args=[other.slug, run.pk])).status_code == 404
    assert client.post(reverse("annotator:training_cancel", args=[other.slug, run.pk])).status_code == 404
