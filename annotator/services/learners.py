"""Writes for learner versions: register a trained adapter, promote a candidate, roll back.

Exactly one version per project is active (a database constraint), so every change of the active
version retires the old one first and activates the new one second, in one transaction.

With a served learner (an openai learner endpoint), the version about to become active has its
adapter loaded into the server first (outside the transaction: it is a network call); if the
server cannot load it, nothing changes and the error names the server. The retired version's
adapter is unloaded afterwards, so the server holds what is in use (a job still running against
a retired version registers it again before its next request).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alignment_core.endpoints import EndpointError, ensure_adapter, unload_adapter
from annotator.models import JobStatus, LearnerVersion, ModelEndpoint, Project, TrainingRun
from annotator.role_models import served_adapter

logger = logging.getLogger(__name__)


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


def _served_learner(project_id: int):
    """The project's served learner endpoint (an EndpointConfig), or None when it runs here."""
    endpoint = ModelEndpoint.objects.filter(project_id=project_id, role="learner",
                                            kind="openai").first()
    return endpoint.config() if endpoint is not None else None


def _serve(version: LearnerVersion) -> None:
    """Load the version's adapter into the project's learner server (no-op without one)."""
    endpoint, adapter = _served_learner(version.project_id), served_adapter(version)
    if endpoint is None or adapter is None:
        return
    try:
        ensure_adapter(endpoint, adapter)
    except EndpointError as error:
        raise ValidationError(f"{version.name} was not made active: {error}") from None


def _unserve(version: LearnerVersion | None) -> None:
    """Unload a retired version's adapter; a failure only costs server memory, so it is logged."""
    endpoint = _served_learner(version.project_id) if version is not None else None
    adapter = served_adapter(version) if endpoint is not None else None
    if adapter is None:
        return
    try:
        unload_adapter(endpoint, adapter.name)
    except EndpointError:
        logger.warning("Could not unload adapter %s of %s", adapter.name, version.name,
                       exc_info=True)


def learner_promote(*, version: LearnerVersion, user=None) -> LearnerVersion:
    """Make `version` the project's active learner; the active one is retired and remembered."""
    _serve(version)
    promoted, retired = _promote(version=version, user=user)
    _unserve(retired)
    return promoted


@transaction.atomic
def _promote(*, version: LearnerVersion, user) -> tuple[LearnerVersion, LearnerVersion | None]:
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
    return version, current


def learner_roll_back(*, project: Project, user=None) -> LearnerVersion:
    """Return to the version that was active before the current one was promoted."""
    current = LearnerVersion.objects.filter(project=project,
                                            status=LearnerVersion.Status.ACTIVE).first()
    if current is not None and current.previous_active is not None:
        _serve(current.previous_active)
    target, retired = _roll_back(project=project, user=user)
    _unserve(retired)
    return target


@transaction.atomic
def _roll_back(*, project: Project, user) -> tuple[LearnerVersion, LearnerVersion]:
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
    return target, current
