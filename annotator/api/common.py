"""Shared pieces of the REST API: the error format, cursor pagination, small helpers.

Every 4xx answer has the same JSON body, {"detail": "<one sentence>", "errors": {...}}, where
`errors` maps field names to lists of messages (empty when the problem is not about a field).
Services raise Django's ValidationError or ValueError for bad input; the handler turns those into
400s, so bad input never becomes a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler as drf_exception_handler

from annotator.access import ProjectAccess, project_access
from annotator.declared_fields import serializer_fields
from annotator.models import DatasetSnapshot, Job, Role
from annotator.services.jobs import JobStateError, job_cancel, job_resume

logger = logging.getLogger(__name__)


def _as_errors(data: Any) -> dict[str, list[str]]:
    """Normalise DRF/Django error payloads to {field: [messages]} ("non_field_errors" for
    messages that belong to no field)."""
    if isinstance(data, dict):
        # Django names a model's own errors (clean(), constraints) "__all__"; DRF's name is kept.
        return {("non_field_errors" if key == "__all__" else str(key)):
                [str(m) for m in (value if isinstance(value, list) else [value])]
                for key, value in data.items()}
    if isinstance(data, list):
        return {"non_field_errors": [str(m) for m in data]}
    return {"non_field_errors": [str(data)]}


def _first_message(errors: dict[str, list[str]]) -> str:
    for field, messages in errors.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler plus: Django ValidationError / ValueError → 400; one body shape for all."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = ValidationError(detail=detail)
    elif isinstance(exc, ValueError):
        logger.info("Bad input rejected by a service: %s", exc)
        exc = ValidationError(detail=[str(exc)])
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, ValidationError):
        errors = _as_errors(response.data)
        response.data = {"detail": _first_message(errors), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"]), "errors": {}}
    else:
        errors = _as_errors(response.data)
        response.data = {"detail": _first_message(errors), "errors": errors}
    return response


class CursorPage(CursorPagination):
    """Stable paging for lists that grow while a client pages through them (newest first)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"


def paginated(view, queryset, serializer_class, context: dict | None = None) -> Response:
    """Page a queryset with the view's paginator and serialize the page (for APIView classes);
    `context` adds to the serializer's context."""
    paginator = CursorPage()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    data = serializer_class(page, many=True,
                            context={"request": view.request, **(context or {})}).data
    return paginator.get_paginated_response(data)


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx answer (for the OpenAPI schema)."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR_RESPONSES = {status.HTTP_400_BAD_REQUEST: ErrorSerializer,
                   status.HTTP_401_UNAUTHORIZED: ErrorSerializer,
                   status.HTTP_403_FORBIDDEN: ErrorSerializer,
                   status.HTTP_404_NOT_FOUND: ErrorSerializer}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource is not in a state that allows this."


def job_status_api(*, lookup: Callable[[ProjectAccess, int], Job],
                   output: type[serializers.Serializer], operation_id: str, description: str,
                   minimum: str = Role.VIEWER) -> type[APIView]:
    """An API view that answers with `output` of the job `lookup(access, pk)` finds (its status,
    progress and results), for members with at least the `minimum` role."""

    class JobStatusApi(APIView):
        @extend_schema(operation_id=operation_id, description=description,
                       responses={status.HTTP_200_OK: output, **ERROR_RESPONSES})
        def get(self, request: Request, slug: str, pk: int) -> Response:
            access = project_access(request.user, slug, minimum=minimum)
            return Response(output(lookup(access, pk)).data)

    JobStatusApi.__name__ = JobStatusApi.__qualname__ = f"JobStatusApi_{operation_id}"
    return JobStatusApi


def job_action_api(*, action: Callable[..., Job], lookup: Callable[[ProjectAccess, int], Job],
                   output: type[serializers.Serializer], operation_id: str, description: str,
                   success: int = status.HTTP_200_OK, conflict: bool = False) -> type[APIView]:
    """An API view for admins that runs `action(job=...)` (`job_cancel`, `job_resume`) on the
    job `lookup(access, pk)` finds and answers with `output` of it.

    A job in the wrong state is a 400 with the service's message, or a 409 with `conflict`
    (exports have always answered 409 there).
    """

    class JobActionApi(APIView):
        @extend_schema(operation_id=operation_id, description=description, request=None,
                       responses={success: output, **ERROR_RESPONSES,
                                  **({status.HTTP_409_CONFLICT: ErrorSerializer}
                                     if conflict else {})})
        def post(self, request: Request, slug: str, pk: int) -> Response:
            access = project_access(request.user, slug, minimum=Role.ADMIN)
            try:
                job = action(job=lookup(access, pk))
            except JobStateError as error:
                if conflict:
                    raise Conflict(" ".join(error.messages)) from None
                raise
            return Response(output(job).data, status=success)

    JobActionApi.__name__ = JobActionApi.__qualname__ = f"JobActionApi_{operation_id}"
    return JobActionApi


def cancel_and_resume_apis(*, lookup: Callable[[ProjectAccess, int], Job],
                           output: type[serializers.Serializer], operation_prefix: str,
                           cancelled: str, resumed: str) -> tuple[type[APIView], type[APIView]]:
    """The cancel and resume views of a resumable kind of job (`<prefix>_cancel` answers 200,
    `<prefix>_resume` 202); `cancelled` and `resumed` say what each keeps, for the docs."""
    return (job_action_api(action=job_cancel, lookup=lookup, output=output,
                           operation_id=f"{operation_prefix}_cancel", description=cancelled),
            job_action_api(action=job_resume, lookup=lookup, output=output,
                           operation_id=f"{operation_prefix}_resume", description=resumed,
                           success=status.HTTP_202_ACCEPTED))


class SnapshotLaunchInput(serializers.Serializer):
    """A snapshot of the project, then one field per declared setting (`declared`, e.g.
    TRAINING_SETTINGS): what launching a training run or a label-source study takes."""

    snapshot = serializers.IntegerField(help_text="A snapshot id of this project.")
    declared: tuple = ()

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **serializer_fields(self.declared)}


def snapshot_launch_values(input_class: type[SnapshotLaunchInput], request: Request,
                           access: ProjectAccess) -> tuple[DatasetSnapshot, dict[str, Any]]:
    """The validated launch input: the project's snapshot it names and the settings' values
    (400 with the field's message for bad input or a snapshot of another project)."""
    data = input_class(data=request.data)
    data.is_valid(raise_exception=True)
    values = dict(data.validated_data)
    snapshot = DatasetSnapshot.objects.filter(project=access.project,
                                              pk=values.pop("snapshot")).first()
    if snapshot is None:
        raise ValidationError({"snapshot": ["No such snapshot in this project."]})
    return snapshot, values
