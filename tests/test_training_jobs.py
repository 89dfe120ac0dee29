"""Training runs end to end on the tiny model, through the real worker (django-tasks-db).

Covers SFT and DPO runs that register a candidate, the held-out evaluation, cancelling (queued
and mid-run) and resuming from the checkpoint, resuming after a worker crash, a failing run that
registers nothing, and `manage.py train`.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from alignment_core.training import Cancelled, TrainConfig, train
from annotator.learner_runtime import _loaded, learner_model_dir
from annotator.models import JobStatus, LearnerVersion, TrainingRun
from annotator.services.jobs import job_request_cancel, job_resume, job_start
from annotator.services.snapshots import snapshot_create
from annotator.services.training import TrainingSettings, training_launch
from annotator.services.training_pipeline import _examples
from tests.factories import make_project
from tests.training_factories import curate_many

pytestmark = pytest.mark.django_db(transaction=True)


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
    curate_many(project, 6)
    return project


@pytest.fixture
def snapshot(project):
    return snapshot_create(project=project, name="s", validation_fraction=0.34)


def small(**extra) -> TrainingSettings:
    values = {"method": "dpo", "lora_r": 4, "lora_alpha": 8, "batch_size": 2, "max_length": 64,
              "checkpoint_every": 1, "eval_budget": 0}
    values.update(extra)
    return TrainingSettings(**values)


def run_worker() -> None:
    call_command("worker", "--batch", "--interval", "0")


def finished(run: TrainingRun) -> TrainingRun:
    return TrainingRun.objects.select_related("output_version").get(pk=run.pk)


@pytest.mark.parametrize("method", ["sft", "dpo", "sft_dpo"])
def test_a_run_trains_registers_a_candidate_and_records_its_curve(project, admin, snapshot, method):
    run = training_launch(project=project, snapshot=snapshot, settings=small(method=method),
                          created_by=admin)
    assert run.status == JobStatus.QUEUED

    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    candidate = run.output_version
    assert candidate.status == LearnerVersion.Status.CANDIDATE
    assert candidate.parent == run.base_version
    assert candidate.adapter_path == f"adapters/{project.slug}/run-{run.pk}"
    adapter = candidate.adapter_dir()
    assert (adapter / "adapter_model.safetensors").is_file()
    manifest = json.loads((adapter / "superalign.json").read_text())
    assert manifest["meta"]["snapshot_hash"] == snapshot.content_hash
    # Four train items, two per step: two steps per phase, one curve point per step.
    phases = ["sft", "dpo"] if method == "sft_dpo" else [method]
    assert [h["step"] for h in run.loss_history] == list(range(1, 2 * len(phases) + 1))
    assert [h["phase"] for h in run.loss_history] == [p for p in phases for _ in range(2)]
    assert all(h["loss"] > 0 for h in run.loss_history)
    if "dpo" in phases:
        assert run.loss_history[-1]["reward_accuracy"] is not None
        assert "val_reward_accuracy" in run.metrics
    assert run.metrics["val_loss"] > 0
    assert candidate.metrics["training"] == run.metrics
    assert run.progress["train"]["done"] == run.progress["train"]["total"] == 2 * len(phases)
    assert "Adapter written" in run.log
    assert not (run.checkpoint_dir() / "checkpoint.pt").exists()


def test_a_rerun_on_the_same_snapshot_takes_the_reference_from_the_cache(project, admin,
                                                                         snapshot, settings):
    first = training_launch(project=project, snapshot=snapshot, settings=small(), created_by=admin)
    run_worker()
    assert finished(first).status == JobStatus.SUCCEEDED
    assert (settings.DATA_DIR / "reference-cache.sqlite3").is_file()

    # Another beta: the same pairs, the same base model, so the same reference scores.
    again = training_launch(project=project, snapshot=snapshot, settings=small(beta=0.5),
                            created_by=admin)
    run_worker()

    again = finished(again)
    assert again.status == JobStatus.SUCCEEDED, again.error
    assert "(0 from the cache)" in finished(first).log
    assert "Scoring 0 pairs with the reference model (4 from the cache)" in again.log


def test_the_worker_trains_with_the_hosts_torch_threads(project, snapshot, settings):
    settings.TORCH_THREADS = 1
    run = training_launch(project=project, snapshot=snapshot, settings=small(method="sft"))

    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    manifest = json.loads((run.output_version.adapter_dir() / "superalign.json").read_text())
    assert manifest["config"]["num_threads"] == 1
    assert run.config.get("num_threads") is None  # the run's own settings don't pin the host's


def test_the_worker_trains_a_run_in_two_processes_when_told_to(project, snapshot, settings):
    # TRAINING_PROCESSES=2: two CPU processes under `accelerate launch`, each with one thread;
    # progress, the log and the adapter come back to the job as with one process.
    settings.TRAINING_PROCESSES, settings.TORCH_THREADS = 2, 1
    run = training_launch(project=project, snapshot=snapshot,
                          settings=small(method="sft_dpo", batch_size=1))

    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "(2 processes)" in run.log and "Adapter written" in run.log
    # Four train items, one per process per step: two steps per phase, as with batch 2 alone.
    assert [h["step"] for h in run.loss_history] == [1, 2, 3, 4]
    assert run.progress["train"]["done"] == run.progress["train"]["total"] == 4
    assert run.output_version.status == LearnerVersion.Status.CANDIDATE
    assert (run.output_version.adapter_dir() / "adapter_model.safetensors").is_file()
    assert not any(run.checkpoint_dir().iterdir())  # no checkpoint or launch folder left


def test_dpo_needs_a_preference_pair(project, admin):
    for item in project.review_items.select_related("critique__response"):
        item.final_response = item.critique.response.text  # approved as is: no pairs
        item.save(update_fields=["final_response"])
    snapshot = snapshot_create(project=project, name="sft only", validation_fraction=0)
    assert snapshot.pair_count == 0
    with pytest.raises(ValidationError) as error:
        training_launch(project=project, snapshot=snapshot, settings=small(method="dpo"))
    assert "preference pair" in str(error.value)
    assert training_launch(project=project, snapshot=snapshot, settings=small(method="sft")).pk


def test_settings_are_validated_with_field_errors(project, snapshot):
    with pytest.raises(ValidationError) as error:
        training_launch(project=project, snapshot=snapshot,
                        settings=small(lora_r=0, lora_dropout=1.5, target_modules=[]))
    assert set(error.value.message_dict) == {"lora_r", "lora_dropout", "target_modules"}
    assert not TrainingRun.objects.exists()


def test_the_evaluation_compares_base_and_candidate_on_held_out_attacks(project, admin, snapshot):
    run = training_launch(project=project, snapshot=snapshot, settings=small(eval_budget=8),
                          created_by=admin)
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    evaluation = run.evaluation
    trained = set(snapshot.examples.values_list("prompt", flat=True))
    for side in ("base", "candidate"):
        report = evaluation[side]
        assert report["n_attacks"] == evaluation["n_attacks"] > 0
        assert 0 <= report["overall"]["lo"] <= report["overall"]["rate"] <= report["overall"]["hi"] <= 1
        assert not trained & {item["text"] for item in report["items"]}
    assert evaluation["base"]["version"]["id"] == run.base_version_id
    assert evaluation["candidate"]["version"]["id"] == run.output_version_id
    summary = evaluation["summary"]
    assert summary["asr_delta"] == pytest.approx(summary["candidate"]["asr"] - summary["base"]["asr"])
    metrics = run.output_version.metrics
    assert metrics["held_out"] == summary["candidate"]
    assert metrics["base_held_out"] == summary["base"]
    assert run.progress["evaluate"]["done"] == run.progress["evaluate"]["total"]


def test_cancelling_a_queued_run_stops_it_before_it_starts(project, snapshot):
    run = training_launch(project=project, snapshot=snapshot, settings=small())
    job_request_cancel(job=run)
    run_worker()
    run = finished(run)
    assert run.status == JobStatus.CANCELLED
    assert run.loss_history == []
    assert run.output_version is None


def test_a_run_cancelled_mid_way_resumes_from_its_checkpoint(project, snapshot):
    run = training_launch(project=project, snapshot=snapshot, settings=small(method="sft_dpo"))
    # The cancel arrives while the worker is running the job: it stops after the current step.
    job_start(job=run, stage="train")
    job_request_cancel(job=run)
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.CANCELLED
    assert [h["step"] for h in run.loss_history] == [1]
    assert (run.checkpoint_dir() / "checkpoint.pt").is_file()
    assert run.output_version is None
    assert LearnerVersion.objects.filter(project=project).count() == 1

    job_resume(job=run)
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "Resuming from the checkpoint at step 1" in run.log
    assert [h["step"] for h in run.loss_history] == [1, 2, 3, 4]
    assert run.output_version.status == LearnerVersion.Status.CANDIDATE


def test_a_run_whose_worker_crashed_resumes_after_recovery(project, snapshot, settings):
    run = training_launch(project=project, snapshot=snapshot,
                          settings=small(method="sft", epochs=3), enqueue=False)
    # Simulate the crash: the job's own training code ran two of six steps, checkpointed, and
    # the process died (heartbeat goes stale, status stays RUNNING).
    pairs, sft, val_pairs, val_sft = _examples(run)
    steps = []
    with pytest.raises(Cancelled):
        train(TrainConfig.from_dict(run.config), learner_model_dir(run.base_version.base_model),
              pairs, sft, run.adapter_dir(), run.checkpoint_dir(),
              progress=steps.append, should_cancel=lambda: len(steps) >= 2,
              val_pairs=val_pairs, val_sft=val_sft)
    job_start(job=run, stage="train")
    TrainingRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 60))

    run_worker()  # recovers the dead job: failed, resumable
    run = finished(run)
    assert run.status == JobStatus.FAILED
    assert run.can_resume

    job_resume(job=run)
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "Resuming from the checkpoint at step 2" in run.log
    assert [h["step"] for h in run.loss_history] == [3, 4, 5, 6]
    assert run.output_version is not None


def test_a_failing_run_registers_no_learner_and_leaves_no_adapter(project, snapshot):
    run = training_launch(project=project, snapshot=snapshot,
                          settings=small(target_modules=["no_such_module"]))
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.FAILED
    assert "no_such_module" in run.error
    assert run.output_version is None
    assert list(LearnerVersion.objects.filter(project=project).values_list("name", flat=True)) == ["base"]
    assert not run.adapter_dir().exists()
    assert "Failed" in run.log


def test_a_finished_adapter_is_registered_on_resume_without_training_again(project, snapshot):
    """The worker died after the adapter was renamed into place but before registering it."""
    run = training_launch(project=project, snapshot=snapshot, settings=small(), enqueue=False)
    pairs, sft, _, _ = _examples(run)
    train(TrainConfig.from_dict(run.config), learner_model_dir(run.base_version.base_model),
          pairs, sft, run.adapter_dir(), run.checkpoint_dir())
    job_start(job=run, stage="train")
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)

    job_resume(job=run)
    run_worker()

    run = finished(run)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.loss_history == []  # nothing was trained again
    assert "Found the finished adapter" in run.log
    assert run.output_version.adapter_dir() == run.adapter_dir()


def test_manage_py_train_snapshots_trains_and_promotes(project, admin, capsys):
    call_command("train", "--project", project.slug, "--method", "sft", "--lora-r", "4",
                 "--batch-size", "2", "--max-length", "64", "--eval-budget", "0", "--promote",
                 "--user", admin.username)
    out = capsys.readouterr().out
    run = TrainingRun.objects.select_related("output_version").get()
    assert run.status == JobStatus.SUCCEEDED
    assert f"Training run {run.pk}: SFT" in out
    assert "Promoted" in out
    assert run.output_version.status == LearnerVersion.Status.ACTIVE
    assert run.snapshot.name == "manage.py train"
