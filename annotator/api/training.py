"""Training API: dataset snapshots, training runs (launch, status, cancel, resume), learner
versions (list, promote, roll back).

Every view checks project access first (404 for outsiders, 403 below the needed role) and calls
the same services as the HTML pages.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment_core.training.label_sources import LABEL_SOURCES
from annotator.access import project_access
from annotator.api.common import (
    ERROR_RESPONSES,
    SnapshotLaunchInput,
    cancel_and_resume_apis,
    job_status_api,
    paginated,
    snapshot_launch_values,
)
from annotator.models import DatasetSnapshot, LearnerVersion, Role, TrainingRun
from annotator.selectors.training import (
    learners_for,
    snapshots_for,
    training_runs_for,
    with_source_counts,
)
from annotator.services.learners import learner_promote, learner_roll_back
from annotator.services.snapshots import SnapshotFilters, snapshot_create, snapshot_preview
from annotator.services.training import TRAINING_SETTINGS, TrainingSettings, training_launch

# -- snapshots ---------------------------------------------------------------------------------


class SnapshotOutput(serializers.ModelSerializer):
    url = serializers.CharField(source="get_absolute_url")
    by_source = serializers.DictField(source="source_counts", child=serializers.IntegerField(),
                                      help_text="Curated items per label source.")

    class Meta:
        model = DatasetSnapshot
        fields = ["id", "name", "content_hash", "filters", "validation_fraction", "seed",
                  "item_count", "pair_count", "sft_count", "train_count", "validation_count",
                  "by_source", "created_at", "url"]
        read_only_fields = fields


class SnapshotInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    campaign = serializers.IntegerField(required=False, allow_null=True, default=None)
    category = serializers.CharField(required=False, allow_blank=True, default="")
    min_agreement = serializers.FloatField(required=False, allow_null=True, default=None,
                                           min_value=0, max_value=1)
    adjudicated_only = serializers.BooleanField(required=False, default=False)
    label_sources = serializers.ListField(
        child=serializers.ChoiceField(choices=list(LABEL_SOURCES)), required=False, default=list,
        help_text="Keep only labels from these sources (empty: every source).")
    helpfulness_margin = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=4,
        help_text="Keep only pairs whose chosen answer is more harmless (or, equally harmless, "
        "more helpful) and loses at most this many helpfulness points (0-4); null: no check.")
    validation_fraction = serializers.FloatField(required=False, default=0.1, min_value=0,
                                                 max_value=0.5)
    seed = serializers.IntegerField(required=False, default=0)

    def filters(self) -> SnapshotFilters:
        data = self.validated_data
        return SnapshotFilters(campaign_id=data["campaign"], category=data["category"],
                               min_agreement=data["min_agreement"],
                               adjudicated_only=data["adjudicated_only"],
                               label_sources=tuple(data["label_sources"]),
                               helpfulness_margin=data["helpfulness_margin"])


class SnapshotPreviewOutput(serializers.Serializer):
    items = serializers.IntegerField()
    pairs = serializers.IntegerField()
    sft = serializers.IntegerField()
    train_pairs = serializers.IntegerField()
    train_sft = serializers.IntegerField()
    validation_pairs = serializers.IntegerField()
    validation_sft = serializers.IntegerField()
    content_hash = serializers.CharField()
    by_source = serializers.DictField(child=serializers.IntegerField(),
                                      help_text="Curated items per label source.")
    dimension_excluded = serializers.IntegerField(
        allow_null=True, help_text="Pairs left out by helpfulness_margin (their SFT examples "
        "stay); null without the check.")
    confidences_stale = serializers.BooleanField(
        help_text="The label confidences predate the latest reviews: creating the snapshot "
        "re-estimates them first, so its content hash will differ from this one.")


class SnapshotListApi(APIView):
    @extend_schema(operation_id="snapshots_list",
                   responses={200: SnapshotOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's dataset snapshots, newest first (viewers and up)."""
        access = project_access(request.user, slug)
        return paginated(self, with_source_counts(snapshots_for(project=access.project)),
                         SnapshotOutput)

    @extend_schema(operation_id="snapshots_create", request=SnapshotInput,
                   responses={201: SnapshotOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Freeze the curated labels that pass the filters into a snapshot (admins)."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = SnapshotInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        snapshot = snapshot_create(
            project=access.project, name=values["name"] or "API snapshot", created_by=request.user,
            filters=data.filters(), validation_fraction=values["validation_fraction"],
            seed=values["seed"])
        return Response(SnapshotOutput(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotPreviewApi(APIView):
    @extend_schema(operation_id="snapshots_preview", request=SnapshotInput,
                   responses={200: SnapshotPreviewOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """The counts a snapshot with these filters would have now; nothing is saved (admins)."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = SnapshotInput(data=request.data)
        data.is_valid(raise_exception=True)
        preview = snapshot_preview(project=access.project, filters=data.filters(),
                                   validation_fraction=data.validated_data["validation_fraction"],
                                   seed=data.validated_data["seed"])
        return Response(SnapshotPreviewOutput(preview.counts()).data)


class SnapshotDetailApi(APIView):
    @extend_schema(operation_id="snapshots_detail",
                   responses={200: SnapshotOutput, **ERROR_RESPONSES})
    def get(self, request: Request, slug: str, pk: int) -> Response:
        """One snapshot's counts, filters and content hash."""
        access = project_access(request.user, slug)
        return Response(SnapshotOutput(
            get_object_or_404(DatasetSnapshot, project=access.project, pk=pk)).data)


# -- training runs -----------------------------------------------------------------------------


class TrainingRunOutput(serializers.ModelSerializer):
    snapshot = serializers.IntegerField(source="snapshot_id")
    base_version = serializers.IntegerField(source="base_version_id")
    output_version = serializers.IntegerField(source="output_version_id", allow_null=True)
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = TrainingRun
        fields = ["id", "method", "status", "stage", "progress", "error", "cancel_requested",
                  "snapshot", "base_version", "output_version", "config", "eval_budget",
                  "metrics", "created_at", "started_at", "finished_at", "heartbeat_at", "url"]
        read_only_fields = fields


class TrainingRunDetailOutput(TrainingRunOutput):
    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "loss_history", "evaluation"]
        read_only_fields = fields


class TrainingLaunchInput(SnapshotLaunchInput):
    """The snapshot, then one field per declared training setting (TRAINING_SETTINGS)."""

    declared = TRAINING_SETTINGS


def _run(access, pk: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("project"),
                             project=access.project, pk=pk)


class TrainingRunListApi(APIView):
    @extend_schema(operation_id="training_runs_list",
                   responses={200: TrainingRunOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's training runs, newest first (viewers and up)."""
        access = project_access(request.user, slug)
        return paginated(self, training_runs_for(project=access.project), TrainingRunOutput)

    @extend_schema(operation_id="training_runs_launch", request=TrainingLaunchInput,
                   responses={201: TrainingRunDetailOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Launch a LoRA fine-tune on a snapshot (admins); the worker trains and evaluates it."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        snapshot, values = snapshot_launch_values(TrainingLaunchInput, request, access)
        run = training_launch(project=access.project, snapshot=snapshot,
                              settings=TrainingSettings(**values), created_by=request.user)
        return Response(TrainingRunDetailOutput(run).data, status=status.HTTP_201_CREATED)


TrainingRunStatusApi = job_status_api(
    lookup=_run, output=TrainingRunDetailOutput, operation_id="training_runs_status",
    description="A run's status, progress, metrics, loss history (one point per step) and "
                "evaluation.")
TrainingRunCancelApi, TrainingRunResumeApi = cancel_and_resume_apis(
    lookup=_run, output=TrainingRunOutput, operation_prefix="training_runs",
    cancelled="Cancel a queued or running run (admins); a running one stops with a checkpoint.",
    resumed="Resume a failed or cancelled run from its last checkpoint (admins).")


# -- learner versions --------------------------------------------------------------------------


class LearnerOutput(serializers.ModelSerializer):
    parent = serializers.IntegerField(source="parent_id", allow_null=True)
    previous_active = serializers.IntegerField(source="previous_active_id", allow_null=True)

    class Meta:
        model = LearnerVersion
        fields = ["id", "name", "status", "base_model", "adapter_path", "parent",
                  "previous_active", "metrics", "created_at", "promoted_at"]
        read_only_fields = fields


class LearnerListApi(APIView):
    @extend_schema(operation_id="learners_list",
                   responses={200: LearnerOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's learner versions (base, candidates, active, retired), newest first."""
        access = project_access(request.user, slug)
        return paginated(self, learners_for(project=access.project), LearnerOutput)


class LearnerPromoteApi(APIView):
    @extend_schema(operation_id="learners_promote", request=None,
                   responses={200: LearnerOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str, pk: int) -> Response:
        """Make this version the active learner; the current one is retired (admins)."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        version = get_object_or_404(LearnerVersion, project=access.project, pk=pk)
        return Response(LearnerOutput(learner_promote(version=version, user=request.user)).data)


class LearnerRollBackApi(APIView):
    @extend_schema(operation_id="learners_roll_back", request=None,
                   responses={200: LearnerOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Return to the version that was active before the current one (admins)."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        return Response(LearnerOutput(learner_roll_back(project=access.project,
                                                        user=request.user)).data)


urlpatterns = [
    path("projects/<slug:slug>/snapshots/", SnapshotListApi.as_view(), name="snapshot_list"),
    path("projects/<slug:slug>/snapshots/preview/", SnapshotPreviewApi.as_view(),
         name="snapshot_preview"),
    path("projects/<slug:slug>/snapshots/<int:pk>/", SnapshotDetailApi.as_view(),
         name="snapshot_detail"),
    path("projects/<slug:slug>/training-runs/", TrainingRunListApi.as_view(),
         name="training_run_list"),
    path("projects/<slug:slug>/training-runs/<int:pk>/", TrainingRunStatusApi.as_view(),
         name="training_run_status"),
    path("projects/<slug:slug>/training-runs/<int:pk>/cancel/", TrainingRunCancelApi.as_view(),
         name="training_run_cancel"),
    path("projects/<slug:slug>/training-runs/<int:pk>/resume/", TrainingRunResumeApi.as_view(),
         name="training_run_resume"),
    path("projects/<slug:slug>/learners/", LearnerListApi.as_view(), name="learner_list"),
    path("projects/<slug:slug>/learners/<int:pk>/promote/", LearnerPromoteApi.as_view(),
         name="learner_promote"),
    path("projects/<slug:slug>/learners/roll-back/", LearnerRollBackApi.as_view(),
         name="learner_roll_back"),
]
