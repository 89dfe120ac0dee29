"""Writes for LoRA fine-tunes: validate settings, launch a run, cancel it, resume it.

The browser form, the REST API and `manage.py train` all pass the same flat settings to
`training_config_build`, so one set of rules (and error messages) applies everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from alignment_core.training import METHODS, LoraSettings, TrainConfig
from annotator.models import (
    DatasetSnapshot,
    LearnerVersion,
    Project,
    SnapshotExample,
    TrainingRun,
)
from annotator.services.jobs import job_enqueue, job_prepare_resume, job_request_cancel

DEFAULT_EVAL_BUDGET = 16  # held-out attacks: small, so a CPU run finishes in minutes
MAX_EVAL_BUDGET = 512
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass
class TrainingSettings:
    """The flat settings an admin chooses; defaults come from alignment_core's TrainConfig."""

    method: str = TrainConfig.method
    lora_r: int = LoraSettings.r
    lora_alpha: int = LoraSettings.alpha
    lora_dropout: float = LoraSettings.dropout
    target_modules: list[str] = field(default_factory=lambda: list(LoraSettings().target_modules))
    learning_rate: float | None = None  # None: 2e-4 for SFT, 5e-5 for DPO (TrainConfig defaults)
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    max_length: int = TrainConfig.max_length
    beta: float = TrainConfig.beta
    seed: int = TrainConfig.seed
    checkpoint_every: int = TrainConfig.checkpoint_every
    max_steps: int | None = None
    eval_budget: int = DEFAULT_EVAL_BUDGET


def training_defaults() -> TrainingSettings:
    return TrainingSettings()


def _check(errors: dict[str, list[str]], ok: bool, name: str, message: str) -> None:
    if not ok:
        errors.setdefault(name, []).append(message)


def training_config_build(settings: TrainingSettings, *, meta: dict[str, Any] | None = None
                          ) -> TrainConfig:
    """Check the settings and turn them into a TrainConfig; raise ValidationError per field."""
    s = settings
    errors: dict[str, list[str]] = {}
    _check(errors, s.method in METHODS, "method", f"Choose one of {', '.join(METHODS)}.")
    _check(errors, 1 <= s.lora_r <= 256, "lora_r", "LoRA rank r must be between 1 and 256.")
    _check(errors, 1 <= s.lora_alpha <= 1024, "lora_alpha", "LoRA alpha must be between 1 and 1024.")
    _check(errors, 0 <= s.lora_dropout < 1, "lora_dropout", "Dropout must be from 0 up to 1 (exclusive).")
    _check(errors, bool(s.target_modules) and all(_MODULE_NAME.match(m) for m in s.target_modules),
           "target_modules", "Name at least one module, e.g. q_proj, v_proj (letters, digits, _ and .).")
    _check(errors, s.learning_rate is None or 0 < s.learning_rate <= 0.1, "learning_rate",
           "The learning rate must be above 0 and at most 0.1 (leave empty for the defaults).")
    _check(errors, 1 <= s.epochs <= 100, "epochs", "Epochs must be between 1 and 100.")
    _check(errors, 1 <= s.batch_size <= 512, "batch_size", "Batch size must be between 1 and 512.")
    _check(errors, 16 <= s.max_length <= 32768, "max_length", "Max length must be between 16 and 32768 tokens.")
    _check(errors, 0 < s.beta <= 10, "beta", "Beta must be above 0 and at most 10.")
    _check(errors, s.checkpoint_every >= 0, "checkpoint_every", "Use 0 (only on cancel) or more steps.")
    _check(errors, s.max_steps is None or s.max_steps >= 1, "max_steps", "Max steps must be at least 1.")
    _check(errors, 0 <= s.eval_budget <= MAX_EVAL_BUDGET, "eval_budget",
           f"The held-out budget must be between 0 (no evaluation) and {MAX_EVAL_BUDGET}.")
    if errors:
        raise ValidationError(errors)
    return TrainConfig(
        method=s.method,
        lora=LoraSettings(r=s.lora_r, alpha=s.lora_alpha, dropout=s.lora_dropout,
                          target_modules=tuple(s.target_modules)),
        learning_rate=s.learning_rate, epochs=s.epochs, batch_size=s.batch_size,
        max_length=s.max_length, beta=s.beta, seed=s.seed, checkpoint_every=s.checkpoint_every,
        max_steps=s.max_steps, meta=dict(meta or {}),
    )


def snapshot_train_counts(snapshot: DatasetSnapshot) -> dict[str, int]:
    """Training examples per kind in the snapshot's train split."""
    train = snapshot.examples.filter(split=SnapshotExample.Split.TRAIN)
    return {"pairs": train.filter(kind=SnapshotExample.Kind.PAIR).count(),
            "sft": train.filter(kind=SnapshotExample.Kind.SFT).count()}


@transaction.atomic
def training_launch(*, project: Project, snapshot: DatasetSnapshot, settings: TrainingSettings,
                    created_by=None, enqueue: bool = True) -> TrainingRun:
    """Create a queued run on the project's active learner and enqueue it for the worker.

    `enqueue=False` leaves the run for the caller to execute in-process (`manage.py train`).
    """
    if snapshot.project_id != project.pk:
        raise ValidationError({"snapshot": "That snapshot belongs to another project."})
    counts = snapshot_train_counts(snapshot)
    config = training_config_build(settings, meta={
        "snapshot_id": snapshot.pk, "snapshot_hash": snapshot.content_hash, "project": project.slug,
    })
    phases = config.phases()
    if "dpo" in phases and counts["pairs"] < 1:
        raise ValidationError({"method": "DPO needs at least one preference pair in the snapshot's "
                                         "train split (a curated answer that differs from the "
                                         "learner's); choose SFT or curate more items."})
    if "sft" in phases and counts["sft"] < 1:
        raise ValidationError({"method": "SFT needs at least one SFT example in the train split."})
    base = LearnerVersion.objects.filter(project=project, status=LearnerVersion.Status.ACTIVE).first()
    if base is None:
        raise ValidationError("The project has no active learner version to train from.")
    run = TrainingRun(project=project, snapshot=snapshot, base_version=base, created_by=created_by,
                      method=config.method, config=config.to_dict(), eval_budget=settings.eval_budget)
    run.full_clean()
    run.save()
    if enqueue:
        from annotator.tasks.training import training_job

        job_enqueue(job=run, task=training_job)
    return run


def training_cancel(*, run: TrainingRun) -> TrainingRun:
    """Ask a run to stop: a queued run stops at once, a running one after its current step
    (with a checkpoint, so it can be resumed)."""
    if not run.is_active:
        raise ValidationError("Only a queued or running training run can be cancelled.")
    job_request_cancel(job=run)
    return run


@transaction.atomic
def training_resume(*, run: TrainingRun) -> TrainingRun:
    """Re-queue a failed or cancelled run; it continues from its last checkpoint."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if not run.can_resume:
        raise ValidationError("Only a failed or cancelled training run can be resumed.")
    job_prepare_resume(job=run)
    from annotator.tasks.training import training_job

    job_enqueue(job=run, task=training_job)
    return run


def training_log_append(*, run: TrainingRun, line: str, limit: int = 20_000) -> None:
    """Append one line to the run's log, keeping only the last `limit` characters."""
    from django.utils import timezone

    text = (run.log or "") + f"[{timezone.now():%H:%M:%S}] {line.rstrip()}\n"
    if len(text) > limit:
        text = "…\n" + text[-limit:].split("\n", 1)[-1]
    run.log = text
    TrainingRun.objects.filter(pk=run.pk).update(log=text)


def training_is_cancel_requested(run: TrainingRun) -> bool:
    return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

