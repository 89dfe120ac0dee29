"""Label-source study API: list and launch studies, a study's status and results, cancel,
resume. Every view checks project access first and calls the same services as the pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import project_access
from annotator.api.common import (
    ERROR_RESPONSES,
    SnapshotLaunchInput,
    cancel_and_resume_apis,
    job_status_api,
    paginated,
    snapshot_launch_values,
)
from annotator.models import LabelStudy, Role
from annotator.selectors.studies import studies_for, study_result_rows
from annotator.services.label_study import STUDY_SETTINGS, StudySettings, label_study_launch


class StudyOutput(serializers.ModelSerializer):
    snapshot = serializers.IntegerField(source="snapshot_id")
    base_version = serializers.IntegerField(source="base_version_id")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = LabelStudy
        fields = ["id", "name", "status", "stage", "progress", "error", "cancel_requested",
                  "snapshot", "base_version", "mix_share", "seed", "config", "eval_budget",
                  "created_at", "started_at", "finished_at", "heartbeat_at", "url"]
        read_only_fields = fields


class StudyDetailOutput(StudyOutput):
    pgr = serializers.SerializerMethodField(
        help_text="PGR of the critic-only candidate on attack success (null: undefined).")
    pgr_reason = serializers.SerializerMethodField(help_text="Why the PGR is undefined, if so.")
    candidates = serializers.SerializerMethodField(
        help_text="The base model and each finished candidate: attack success and over-refusal "
                  "with 95% intervals, expert labels and minutes, PGR.")

    class Meta(StudyOutput.Meta):
        fields = [*StudyOutput.Meta.fields, "pgr", "pgr_reason", "candidates", "results"]
        read_only_fields = fields

    def _report(self, study: LabelStudy) -> dict:
        return (study.results or {}).get("report") or {}

    def get_pgr(self, study: LabelStudy) -> float | None:
        return self._report(study).get("pgr")

    def get_pgr_reason(self, study: LabelStudy) -> str:
        return self._report(study).get("pgr_reason", "")

    def get_candidates(self, study: LabelStudy) -> list[dict]:
        return study_result_rows(study=study)


class StudyLaunchInput(SnapshotLaunchInput):
    """The snapshot, then one field per declared study and training setting (STUDY_SETTINGS)."""

    declared = STUDY_SETTINGS


def _study(access, pk: int) -> LabelStudy:
    return get_object_or_404(LabelStudy.objects.select_related("project"),
                             project=access.project, pk=pk)


class StudyListApi(APIView):
    @extend_schema(operation_id="studies_list",
                   responses={200: StudyOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's label-source studies, newest first (viewers and up)."""
        access = project_access(request.user, slug)
        return paginated(self, studies_for(project=access.project), StudyOutput)

    @extend_schema(operation_id="studies_launch", request=StudyLaunchInput,
                   responses={201: StudyDetailOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Launch a study on a snapshot (admins); the worker trains and measures the critic-,
        expert- and mix-labelled candidates."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        snapshot, values = snapshot_launch_values(StudyLaunchInput, request, access)
        study = label_study_launch(project=access.project, snapshot=snapshot,
                                   settings=StudySettings(**values), created_by=request.user)
        return Response(StudyDetailOutput(study).data, status=status.HTTP_201_CREATED)


StudyStatusApi = job_status_api(
    lookup=_study, output=StudyDetailOutput, operation_id="studies_status",
    description="A study's status, progress and results: attack success, over-refusal, expert "
                "minutes and PGR of every candidate.")
StudyCancelApi, StudyResumeApi = cancel_and_resume_apis(
    lookup=_study, output=StudyOutput, operation_prefix="studies",
    cancelled="Cancel a queued or running study (admins); training stops with a checkpoint.",
    resumed="Resume a failed or cancelled study where it stopped (admins).")


urlpatterns = [
    path("projects/<slug:slug>/studies/", StudyListApi.as_view(), name="study_list"),
    path("projects/<slug:slug>/studies/<int:pk>/", StudyStatusApi.as_view(), name="study_status"),
    path("projects/<slug:slug>/studies/<int:pk>/cancel/", StudyCancelApi.as_view(),
         name="study_cancel"),
    path("projects/<slug:slug>/studies/<int:pk>/resume/", StudyResumeApi.as_view(),
         name="study_resume"),
]
