"""Model endpoints API (admins): where each role's model runs for a project.

`/api/projects/<slug>/endpoints/` lists the roles that have one; `…/endpoints/<role>/` reads
one (GET; a role without one answers `configured: false` and what it uses instead), creates or
replaces it (PUT), changes it (PATCH) or removes it (DELETE: the role goes back to the
default). The fields are alignment_core's EndpointConfig; an API key is never sent or shown,
only the name of the environment variable the workers read it from, and a field the endpoint
does not have (an `api_key`, say) is refused rather than dropped.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment_core.endpoints.config import ROLES
from annotator.access import project_access
from annotator.api.common import ERROR_RESPONSES, paginated
from annotator.models import ModelEndpoint, Role
from annotator.models.endpoints import DEFAULT_LABELS, ENDPOINT_FIELDS
from annotator.services.endpoints import endpoint_delete, endpoint_set

# Read-only fields of the output, accepted (and ignored) so a GET body can be sent back.
_OUTPUT_ONLY = frozenset({"role", "configured", "label", "created_at", "updated_at"})
_NOT_A_FIELD = ("Not an endpoint field. An API key is never stored: put it in an environment "
                "variable on the workers and give that variable's name as api_key_env.")


class EndpointInput(serializers.ModelSerializer):
    class Meta:
        model = ModelEndpoint
        fields = list(ENDPOINT_FIELDS)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(ENDPOINT_FIELDS) - _OUTPUT_ONLY) \
            if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: [_NOT_A_FIELD] for name in unknown})
        return super().to_internal_value(data)


class EndpointOutput(serializers.ModelSerializer):
    configured = serializers.SerializerMethodField(
        help_text="False: the role has no endpoint and uses the default the label names.")
    label = serializers.SerializerMethodField(help_text="How jobs and errors name the model.")

    class Meta:
        model = ModelEndpoint
        fields = ["role", "configured", *ENDPOINT_FIELDS, "label", "created_at", "updated_at"]
        read_only_fields = fields

    def get_configured(self, endpoint: ModelEndpoint) -> bool:
        return endpoint.pk is not None

    def get_label(self, endpoint: ModelEndpoint) -> str:
        return endpoint.config().label if endpoint.pk else DEFAULT_LABELS[endpoint.role]


def _role(role: str) -> str:
    if role not in ROLES:
        raise Http404(f"No role {role!r}; roles: {', '.join(ROLES)}.")
    return role


class EndpointListApi(APIView):
    @extend_schema(operation_id="endpoints_list",
                   responses={200: EndpointOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's model endpoints (admins); a role without one uses the default."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        return paginated(self, ModelEndpoint.objects.filter(project=access.project),
                         EndpointOutput)


class EndpointDetailApi(APIView):
    @extend_schema(operation_id="endpoints_read", responses={200: EndpointOutput,
                                                             **ERROR_RESPONSES})
    def get(self, request: Request, slug: str, role: str) -> Response:
        """The role's endpoint (admins), or `configured: false` when it uses the default."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        endpoint = (ModelEndpoint.objects.filter(project=access.project, role=_role(role)).first()
                    or ModelEndpoint(project=access.project, role=role))
        return Response(EndpointOutput(endpoint).data)

    def _write(self, request: Request, slug: str, role: str, partial: bool) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = EndpointInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        endpoint, created = endpoint_set(project=access.project, role=_role(role),
                                         values=dict(data.validated_data), partial=partial)
        return Response(EndpointOutput(endpoint).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="endpoints_put", request=EndpointInput,
                   responses={200: EndpointOutput, 201: EndpointOutput, **ERROR_RESPONSES})
    def put(self, request: Request, slug: str, role: str) -> Response:
        """Create or replace the role's endpoint (admins); fields left out take defaults."""
        return self._write(request, slug, role, partial=False)

    @extend_schema(operation_id="endpoints_patch", request=EndpointInput,
                   responses={200: EndpointOutput, 201: EndpointOutput, **ERROR_RESPONSES})
    def patch(self, request: Request, slug: str, role: str) -> Response:
        """Change some fields of the role's endpoint (admins)."""
        return self._write(request, slug, role, partial=True)

    @extend_schema(operation_id="endpoints_delete", request=None,
                   responses={204: None, **ERROR_RESPONSES})
    def delete(self, request: Request, slug: str, role: str) -> Response:
        """Remove the role's endpoint (admins): the role uses the default (also when it did)."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        endpoint_delete(project=access.project, role=_role(role))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("projects/<slug:slug>/endpoints/", EndpointListApi.as_view(), name="endpoint_list"),
    path("projects/<slug:slug>/endpoints/<str:role>/", EndpointDetailApi.as_view(),
         name="endpoint_detail"),
]
