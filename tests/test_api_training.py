"""Training API: snapshots, training runs, learner versions (success, 400, 401, 403, 404, 405)."""

from __future__ import annotations

import pytest
from django_tasks import default_task_backend

from annotator.models import DatasetSnapshot, LearnerVersion, Role, TrainingRun
from annotator.services.learners import learner_promote, learner_register_candidate
from tests.factories import active_learner, add_member, make_project
from tests.training_factories import curate_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project()
    curate_many(project, 4)
    return project


def url(project, tail: str = "") -> str:
    return f"/api/projects/{project.slug}/{tail}"


# -- snapshots ---------------------------------------------------------------------------------

def test_it_previews_and_creates_snapshots(api, project, admin):
    api.force_authenticate(admin)
    preview = api.post(url(project, "snapshots/preview/"), {"validation_fraction": 0.25},
                       format="json")
    assert preview.status_code == 200
    counts = preview.json()
    assert (counts["items"], counts["pairs"], counts["sft"]) == (4, 4, 4)
    assert counts["train_pairs"] + counts["validation_pairs"] == 4
    assert not DatasetSnapshot.objects.exists()

    created = api.post(url(project, "snapshots/"), {"name": "api", "validation_fraction": 0.25},
                       format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["content_hash"] == counts["content_hash"]
    assert body["pair_count"] == 4 and body["item_count"] == 4

    listed = api.get(url(project, "snapshots/")).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    detail = api.get(url(project, f"snapshots/{body['id']}/"))
    assert detail.status_code == 200 and detail.json()["name"] == "api"


def test_snapshot_input_errors_are_400(api, project, admin):
    api.force_authenticate(admin)
    response = api.post(url(project, "snapshots/"), {"min_agreement": 2}, format="json")
    assert response.status_code == 400
    assert "min_agreement" in response.json()["errors"]
    empty = api.post(url(project, "snapshots/"), {"category": "nothing-here"}, format="json")
    assert empty.status_code == 400
    assert "No curated labels" in empty.json()["detail"]


def test_snapshots_need_authentication_and_admin_to_create(api, project, expert):
    assert api.get(url(project, "snapshots/")).status_code == 401
    api.force_authenticate(expert)
    assert api.get(url(project, "snapshots/")).status_code == 200
    assert api.post(url(project, "snapshots/"), {}, format="json").status_code == 403
    assert api.post(url(project, "snapshots/preview/"), {}, format="json").status_code == 403


def test_snapshots_of_other_projects_are_404(api, project, snapshot):
    other = make_project()
    api.force_authenticate(add_member(other, Role.ADMIN))
    assert api.get(url(project, "snapshots/")).status_code == 404
    assert api.get(url(other, f"snapshots/{snapshot.pk}/")).status_code == 404


def test_snapshot_preview_rejects_get(api, project, admin):
    api.force_authenticate(admin)
    assert api.get(url(project, "snapshots/preview/")).status_code == 405


# -- training runs -----------------------------------------------------------------------------

def test_it_launches_a_run_with_core_defaults(api, project, admin, snapshot,
                                              django_capture_on_commit_callbacks):
    api.force_authenticate(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(project, "training-runs/"),
                            {"snapshot": snapshot.pk, "method": "sft", "max_steps": 2},
                            format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["method"] == "sft"
    assert body["config"]["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05,
                                      "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    assert body["eval_budget"] == 16 and body["loss_history"] == []
    assert body["base_version"] == active_learner(project).pk
    assert run.created_by == admin
    # Waiting in the queue for a worker, whichever backend runs it (the database or RQ).
    assert default_task_backend.get_result(run.task_id).status == "READY"


def test_launch_errors_are_400(api, project, admin, snapshot):
    api.force_authenticate(admin)
    bad = api.post(url(project, "training-runs/"), {"snapshot": snapshot.pk, "lora_r": 300},
                   format="json")
    assert bad.status_code == 400
    assert "between 1 and 256" in bad.json()["errors"]["lora_r"][0]
    missing = api.post(url(project, "training-runs/"), {"snapshot": 999999}, format="json")
    assert missing.status_code == 400 and "snapshot" in missing.json()["errors"]
    assert api.post(url(project, "training-runs/"), {}, format="json").status_code == 400
    assert not TrainingRun.objects.exists()


def test_run_status_has_metrics_and_loss_history(api, project, expert, run):
    TrainingRun.objects.filter(pk=run.pk).update(
        loss_history=[{"step": 1, "loss": 0.7}], metrics={"val_loss": 1.5})
    api.force_authenticate(expert)
    body = api.get(url(project, f"training-runs/{run.pk}/")).json()
    assert body["loss_history"] == [{"step": 1, "loss": 0.7}]
    assert body["metrics"] == {"val_loss": 1.5}
    listed = api.get(url(project, "training-runs/")).json()["results"]
    assert [row["id"] for row in listed] == [run.pk] and "loss_history" not in listed[0]


def test_it_cancels_and_resumes_a_run(api, project, admin, run):
    api.force_authenticate(admin)
    cancelled = api.post(url(project, f"training-runs/{run.pk}/cancel/"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(url(project, f"training-runs/{run.pk}/cancel/"))
    assert again.status_code == 400
    resumed = api.post(url(project, f"training-runs/{run.pk}/resume/"))
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    assert api.post(url(project, f"training-runs/{run.pk}/resume/")).status_code == 400


def test_runs_need_authentication_and_admin_to_act(api, project, expert, run, snapshot):
    assert api.get(url(project, "training-runs/")).status_code == 401
    assert api.post(url(project, f"training-runs/{run.pk}/cancel/")).status_code == 401
    api.force_authenticate(expert)
    assert api.post(url(project, "training-runs/"), {"snapshot": snapshot.pk},
                    format="json").status_code == 403
    assert api.post(url(project, f"training-runs/{run.pk}/cancel/")).status_code == 403
    assert api.post(url(project, f"training-runs/{run.pk}/resume/")).status_code == 403


def test_runs_of_other_projects_are_404(api, project, run):
    other = make_project()
    api.force_authenticate(add_member(other, Role.ADMIN))
    assert api.get(url(other, f"training-runs/{run.pk}/")).status_code == 404
    assert api.post(url(other, f"training-runs/{run.pk}/cancel/")).status_code == 404
    assert api.get(url(project, f"training-runs/{run.pk}/")).status_code == 404


def test_run_actions_reject_get_and_status_rejects_post(api, project, admin, run):
    api.force_authenticate(admin)
    assert api.get(url(project, f"training-runs/{run.pk}/cancel/")).status_code == 405
    assert api.get(url(project, f"training-runs/{run.pk}/resume/")).status_code == 405
    assert api.post(url(project, f"training-runs/{run.pk}/")).status_code == 405


# -- learner versions --------------------------------------------------------------------------

def test_it_lists_promotes_and_rolls_back(api, project, admin, run):
    candidate = learner_register_candidate(run=run, metrics={"val_loss": 1.0})
    api.force_authenticate(admin)

    listed = api.get(url(project, "learners/")).json()["results"]
    assert {row["name"]: row["status"] for row in listed} == {"base": "active",
                                                              candidate.name: "candidate"}
    promoted = api.post(url(project, f"learners/{candidate.pk}/promote/"))
    assert promoted.status_code == 200
    assert promoted.json()["status"] == "active"
    assert promoted.json()["previous_active"] == LearnerVersion.objects.get(name="base").pk

    rolled = api.post(url(project, "learners/roll-back/"))
    assert rolled.status_code == 200 and rolled.json()["name"] == "base"
    assert active_learner(project).name == "base"
    nothing = api.post(url(project, "learners/roll-back/"))
    assert nothing.status_code == 400 and "no earlier" in nothing.json()["detail"]


def test_promoting_the_active_version_is_400(api, project, admin):
    api.force_authenticate(admin)
    response = api.post(url(project, f"learners/{active_learner(project).pk}/promote/"))
    assert response.status_code == 400


def test_learners_need_authentication_and_admin_to_change(api, project, expert, run):
    candidate = learner_register_candidate(run=run, metrics={})
    assert api.get(url(project, "learners/")).status_code == 401
    api.force_authenticate(expert)
    assert api.get(url(project, "learners/")).status_code == 200
    assert api.post(url(project, f"learners/{candidate.pk}/promote/")).status_code == 403
    assert api.post(url(project, "learners/roll-back/")).status_code == 403
    assert active_learner(project).name == "base"


def test_learners_of_other_projects_are_404(api, project, run):
    candidate = learner_register_candidate(run=run, metrics={})
    other = make_project()
    api.force_authenticate(add_member(other, Role.ADMIN))
    assert api.get(url(project, "learners/")).status_code == 404
    assert api.post(url(other, f"learners/{candidate.pk}/promote/")).status_code == 404
    learner_promote(version=candidate)
    assert api.post(url(project, "learners/roll-back/")).status_code == 404


def test_learner_actions_reject_get(api, project, admin):
    api.force_authenticate(admin)
    assert api.get(url(project, f"learners/{active_learner(project).pk}/promote/")).status_code == 405
    assert api.get(url(project, "learners/roll-back/")).status_code == 405
    assert api.post(url(project, "learners/")).status_code == 405
