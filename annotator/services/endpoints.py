"""Writes for model endpoints: give a project's role an endpoint, change it, or remove it.

Removing a role's endpoint returns the role to the default (the in-process learner; no judge).
Nothing here talks to a server: an endpoint is checked by the jobs that use it, and a dead one
fails them with a message that names it. The API key never passes through here (only the name
of the variable that holds it).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alignment_core.endpoints.config import ROLES
from annotator.models import ModelEndpoint, Project
from annotator.models.endpoints import ENDPOINT_FIELDS


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}; roles: {', '.join(ROLES)}."})


@transaction.atomic
def endpoint_set(*, project: Project, role: str, values: dict[str, Any],
                 partial: bool = False) -> tuple[ModelEndpoint, bool]:
    """Create or replace the role's endpoint (fields not given take their defaults), or with
    `partial` change only the given fields; returns (endpoint, created). Invalid values raise
    ValidationError and change nothing."""
    _check_role(role)
    unknown = sorted(set(values) - set(ENDPOINT_FIELDS))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "Not an endpoint field."))
    endpoint = ModelEndpoint.objects.select_for_update().filter(project=project, role=role).first()
    created = endpoint is None
    if created:
        endpoint = ModelEndpoint(project=project, role=role)
    elif not partial:
        # A replace: every field not given goes back to its default.
        for name in ENDPOINT_FIELDS:
            setattr(endpoint, name, ModelEndpoint._meta.get_field(name).get_default())
    for name, value in values.items():
        setattr(endpoint, name, value)
    endpoint.updated_at = timezone.now()
    endpoint.full_clean()
    endpoint.save()
    return endpoint, created


@transaction.atomic
def endpoint_delete(*, project: Project, role: str) -> bool:
    """Remove the role's endpoint (back to the default); False when there was none."""
    _check_role(role)
    deleted, _ = ModelEndpoint.objects.filter(project=project, role=role).delete()
    return bool(deleted)
