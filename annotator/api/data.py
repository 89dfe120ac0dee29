"""API: dataset exports (a background job each), imports (all or nothing) and my API tokens."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import project_access
from annotator.api.common import (
    ERROR_RESPONSES,
    Conflict,
    job_action_api,
    job_status_api,
    paginated,
)
from annotator.export_filters import EXPORT_FILTERS, ExportFilter
from annotator.models import ApiToken, Export, JobStatus, Role
from annotator.services.exports import export_create, export_file_response
from annotator.services.imports import IMPORT_KINDS, import_file
from annotator.services.jobs import job_cancel
from annotator.services.tokens import token_create, token_revoke

# -- exports ------------------------------------------------------------------------------------


def _filter_field(spec: ExportFilter) -> serializers.Field:
    """The API field of one declared export filter (the service validates the value)."""
    common = {"required": False, "help_text": spec.help or None}
    if spec.kind == "choice":
        return serializers.ChoiceField(choices=spec.values, **common)
    if spec.kind == "fraction":
        return serializers.FloatField(min_value=0, max_value=1, **common)
    field_class = {"campaign": serializers.IntegerField, "flag": serializers.BooleanField}.get(
        spec.kind, serializers.CharField)
    return field_class(**common)


class ExportFilters(serializers.Serializer):
    """One optional field per declared export filter (annotator.export_filters)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {spec.key: _filter_field(spec) for spec in EXPORT_FILTERS}


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=Export.Format.choices)
    include_provenance = serializers.BooleanField(default=True)
    snapshot = serializers.IntegerField(required=False, allow_null=True,
                                        help_text="Export this snapshot's frozen examples.")
    filters = ExportFilters(required=False)

    def to_internal_value(self, data):
        # Unknown top-level or filter keys are refused (a typo must not silently widen a dataset).
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            filters = data.get("filters")
            if isinstance(filters, dict):
                unknown += [f"filters.{k}" for k in sorted(set(filters) - set(ExportFilters().fields))]
            if unknown:
                raise serializers.ValidationError({"non_field_errors": [
                    f"Unknown field(s): {', '.join(unknown)}."]})
        return super().to_internal_value(data)


class ExportOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["id", "format", "status", "stage", "progress", "error", "filters",
                  "include_provenance", "snapshot", "rows", "created_at", "started_at",
                  "finished_at", "download_url"]

    def get_download_url(self, export: Export) -> str | None:
        if export.status != JobStatus.SUCCEEDED:
            return None
        return reverse("api:export_download", args=[export.project.slug, export.pk])


class ExportListView(APIView):
    @extend_schema(
        operation_id="exports_list", responses={200: ExportOutput(many=True), **ERROR_RESPONSES},
        parameters=[OpenApiParameter("status", str, enum=JobStatus.values),
                    OpenApiParameter("format", str, enum=Export.Format.values)],
        summary="The project's exports, newest first (admins).")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        exports = Export.objects.filter(project=access.project).select_related("project")
        for key, choices in (("status", JobStatus.values), ("format", Export.Format.values)):
            value = request.query_params.get(key)
            if value:
                if value not in choices:
                    raise serializers.ValidationError({key: [f"Use one of {', '.join(choices)}."]})
                exports = exports.filter(**{key: value})
        return paginated(self, exports, ExportOutput)

    @extend_schema(operation_id="exports_create", request=ExportInput,
                   responses={202: ExportOutput, **ERROR_RESPONSES},
                   summary="Start an export; it runs as a background job (poll its status).")
    def post(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = None
        if data.validated_data.get("snapshot") is not None:
            snapshot = access.project.snapshots.filter(pk=data.validated_data["snapshot"]).first()
            if snapshot is None:
                raise serializers.ValidationError({"snapshot": ["This project has no such snapshot."]})
        export = export_create(project=access.project, user=request.user,
                               format=data.validated_data["format"],
                               filters=data.validated_data.get("filters") or {},
                               include_provenance=data.validated_data["include_provenance"],
                               snapshot=snapshot)
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


def _export(access, pk: int) -> Export:
    return get_object_or_404(Export.objects.select_related("project"), project=access.project,
                             pk=pk)


ExportDetailView = job_status_api(
    lookup=_export, output=ExportOutput, operation_id="exports_retrieve",
    description="An export's status and progress (admins).", minimum=Role.ADMIN)
ExportCancelView = job_action_api(
    action=job_cancel, lookup=_export, output=ExportOutput, operation_id="exports_cancel",
    description="Cancel a queued or running export.", conflict=True)


class ExportDownloadView(APIView):
    @extend_schema(operation_id="exports_download",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              409: OpenApiResponse(description="Not finished yet."),
                              **ERROR_RESPONSES},
                   summary="Download a finished export's file (admins).")
    def get(self, request: Request, slug: str, pk: int):
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        export = get_object_or_404(Export, project=access.project, pk=pk)
        response = export_file_response(export)
        if response is None:
            raise Conflict(f"Export {export.pk} has no file to download (status: {export.status}).")
        return response


# -- imports -------------------------------------------------------------------------------------


class ImportInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(IMPORT_KINDS),
                                   help_text="prompts, pairs (prompt/response) or hh (HH-RLHF).")
    file = serializers.FileField()


class ImportOutput(serializers.Serializer):
    kind = serializers.CharField()
    rows = serializers.IntegerField()
    campaign = serializers.IntegerField(allow_null=True)
    items = serializers.IntegerField(help_text="Curated items created (hh imports).")


class ImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="imports_create", request={"multipart/form-data": ImportInput},
                   responses={201: ImportOutput, **ERROR_RESPONSES},
                   summary="Import a file; nothing is written unless every row is valid.")
    def post(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        result = import_file(project=access.project, user=request.user,
                             kind=data.validated_data["kind"], filename=upload.name,
                             stream=upload)
        return Response(ImportOutput(result).data, status=status.HTTP_201_CREATED)


# -- my API tokens --------------------------------------------------------------------------------


class TokenOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class NewTokenOutput(TokenOutput):
    key = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "key"]


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=80)


class TokenListView(APIView):
    @extend_schema(operation_id="tokens_list", responses={200: TokenOutput(many=True),
                                                          **ERROR_RESPONSES},
                   summary="My API tokens (keys are never shown again).")
    def get(self, request: Request) -> Response:
        return paginated(self, ApiToken.objects.filter(user=request.user), TokenOutput)

    @extend_schema(operation_id="tokens_create", request=TokenInput,
                   responses={201: NewTokenOutput, **ERROR_RESPONSES},
                   summary="Create an API token; the answer holds its key, once.")
    def post(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        new = token_create(user=request.user, name=data.validated_data["name"])
        new.token.key = new.key
        return Response(NewTokenOutput(new.token).data, status=status.HTTP_201_CREATED)


class TokenRevokeView(APIView):
    @extend_schema(operation_id="tokens_revoke", request=None,
                   responses={200: TokenOutput, **ERROR_RESPONSES},
                   summary="Revoke one of my API tokens.")
    def delete(self, request: Request, pk: int) -> Response:
        token = get_object_or_404(ApiToken, user=request.user, pk=pk)
        return Response(TokenOutput(token_revoke(token=token)).data)


urlpatterns = [
    path("projects/<slug:slug>/exports/", ExportListView.as_view(), name="export_list"),
    path("projects/<slug:slug>/exports/<int:pk>/", ExportDetailView.as_view(), name="export_detail"),
    path("projects/<slug:slug>/exports/<int:pk>/cancel/", ExportCancelView.as_view(),
         name="export_cancel"),
    path("projects/<slug:slug>/exports/<int:pk>/download/", ExportDownloadView.as_view(),
         name="export_download"),
    path("projects/<slug:slug>/imports/", ImportView.as_view(), name="import_create"),
    path("tokens/", TokenListView.as_view(), name="token_list"),
    path("tokens/<int:pk>/", TokenRevokeView.as_view(), name="token_revoke"),
]
