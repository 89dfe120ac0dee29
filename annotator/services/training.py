"""Writes for LoRA fine-tunes: validate settings and launch a run (cancel and resume are the
shared `job_cancel` / `job_resume`; the pipeline is annotator.services.training_pipeline).

The browser form, the REST API and `manage.py train` all pass the same flat settings to
`training_config_build`, so one set of rules (and error messages) applies everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from alignment_core.training import TrainConfig
from alignment_core.training.settings import (
    Setting,
    check_values,
    config_from_values,
    setting,
    settings_of,
)
from annotator.models import (
    DatasetSnapshot,
    LearnerVersion,
    Project,
    SnapshotExample,
    TrainingRun,
)
from annotator.services.jobs import job_enqueue

DEFAULT_EVAL_BUDGET = 16  # held-out attacks: small, so a CPU run finishes in minutes
MAX_EVAL_BUDGET = 512


@dataclass
class EvaluationSettings:
    """The one run setting the web app adds to TrainConfig's: the held-out evaluation."""

    eval_budget: int = setting(DEFAULT_EVAL_BUDGET, label="Held-out attacks", minimum=0,
                               maximum=MAX_EVAL_BUDGET,
                               help="held-out attacks for the evaluation (0: skip it)")


# What an admin chooses for a run, flat: TrainConfig's run settings (alignment_core declares them
# once, with defaults, help and bounds) plus the evaluation budget. The form, the API serializer
# and `manage.py train` are built from this list, so a setting added to TrainConfig with
# `setting(...)` appears in all of them.
TRAINING_SETTINGS: tuple[Setting, ...] = (*settings_of(TrainConfig, scope="run"),
                                          *settings_of(EvaluationSettings))

# The same settings as a flat dataclass (keyword arguments with the declared defaults).
TrainingSettings = dataclasses.make_dataclass(
    "TrainingSettings",
    [(s.name, Any, dataclasses.field(default=s.default)) for s in TRAINING_SETTINGS],
)


def training_defaults() -> TrainingSettings:
    return TrainingSettings()


def training_config_build(settings: TrainingSettings, *, meta: dict[str, Any] | None = None
                          ) -> TrainConfig:
    """Check the settings against their declarations and turn them into a TrainConfig; raise
    ValidationError per field."""
    return declared_config_build(TRAINING_SETTINGS, dataclasses.asdict(settings), meta=meta)


def declared_config_build(declared: tuple[Setting, ...], values: dict[str, Any], *,
                          meta: dict[str, Any] | None = None) -> TrainConfig:
    """Check flat values against their declarations and build the TrainConfig (other declared
    values, e.g. a study's, are checked and left out); raise ValidationError per field."""
    errors = check_values(declared, values)
    if errors:
        raise ValidationError(errors)
    config = config_from_values(TrainConfig, values, meta=dict(meta or {}))
    try:
        config.validate()  # the rules between settings (label smoothing needs its objective)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    return config


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
        job_enqueue(job=run)
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

