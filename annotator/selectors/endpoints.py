"""Reads for model endpoints: a project's configured roles as plain configs."""

from __future__ import annotations

from typing import Any

from alignment_core.endpoints.config import ROLES, EndpointConfig
from annotator.models import ModelEndpoint, Project
from annotator.models.endpoints import ROLE_LABELS


def endpoint_configs(*, project: Project) -> dict[str, EndpointConfig]:
    """{role: EndpointConfig} for the roles the project gave an endpoint (others: the default)."""
    return {endpoint.role: endpoint.config()
            for endpoint in ModelEndpoint.objects.filter(project=project)}


def usage_rows(*, usage: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A job's stored token usage as table rows, learner first: role (in words), endpoint,
    requests, prompt_tokens, completion_tokens."""
    order = {role: index for index, role in enumerate(ROLES)}
    return [{**row, "role": ROLE_LABELS.get(role, role)}
            for role, row in sorted((usage or {}).items(),
                                    key=lambda pair: order.get(pair[0], len(order)))]
