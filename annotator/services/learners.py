"""Writes for learner versions: register a trained adapter, promote a candidate, roll back.

Exactly one version per project is active (a database constraint), so every change of the active
version retires the old one first and activates the new one second, in one transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import JobStatus, LearnerVersion, Project, TrainingRun


def _locked_active(project: Project) -> LearnerVersion | None:
    return (LearnerVersion.objects.select_for_update()
            .filter(project=project, status=LearnerVersion.Status.ACTIVE).first())


@transaction.atomic
def learner_register_candidate(*, run: TrainingRun, metrics: dict[str, Any],
                               finished: bool = False) -> LearnerVersion:
    """Register a run's complete adapter as a candidate version, with the run's status update.

    Called only after the adapter directory was written completely (alignment_core renames it
    into place atomically), so a candidate always points at a whole adapter. `finished` marks the
    run succeeded in the same transaction (when no evaluation follows).
    """
    run = TrainingRun.objects.select_for_update().select_related("base_version").get(pk=run.pk)
    if run.output_version_id is not None:
        return run.output_version
    base = run.base_version
    version = LearnerVersion(
        project_id=run.project_id, name=f"run-{run.pk}-{run.method}", base_model=base.base_model,
        adapter_path=run.adapter_relpath, parent=base, status=LearnerVersion.Status.CANDIDATE,
        metrics={"training": metrics},
    )
    version.full_clean()
    version.save()
    run.output_version = version
    run.metrics = metrics
    fields = ["output_version", "metrics"]
    if finished:
        run.status = JobStatus.SUCCEEDED
        run.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    run.save(update_fields=fields)
    return version


@transaction.atomic
def learner_promote(*, version: LearnerVersion, user=None) -> LearnerVersion:
    """Make `version` the project's active learner; the active one is retired and remembered."""
    current = _locked_active(version.project)
    version = LearnerVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == LearnerVersion.Status.ACTIVE:
        raise ValidationError(f"{version.name} is already the active learner.")
    # Retire first, then activate: the one-active constraint holds after every statement.
    if current is not None:
        current.status = LearnerVersion.Status.RETIRED
        current.save(update_fields=["status"])
    version.status = LearnerVersion.Status.ACTIVE
    version.previous_active = current
    version.promoted_at = timezone.now()
    version.promoted_by = user if user is not None and user.is_authenticated else None
    version.save(update_fields=["status", "previous_active", "promoted_at", "promoted_by"])
    return version


@transaction.atomic
def learner_roll_back(*, project: Project, user=None) -> LearnerVersion:
    """Return to the version that was active before the current one was promoted."""
    current = _locked_active(project)
    if current is None or current.previous_active_id is None:
        raise ValidationError("There is no earlier learner version to roll back to.")
    target = LearnerVersion.objects.select_for_update().get(pk=current.previous_active_id)
    current.status = LearnerVersion.Status.RETIRED
    current.save(update_fields=["status"])
    # The target keeps its own previous_active, so rolling back again walks further back.
    target.status = LearnerVersion.Status.ACTIVE
    target.promoted_at = timezone.now()
    target.promoted_by = user if user is not None and user.is_authenticated else None
    target.save(update_fields=["status", "promoted_at", "promoted_by"])
    return target
