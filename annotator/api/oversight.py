"""API: the oversight report (expert reliability, gold accuracy, assisted vs blind), its refresh,
and gold items. Admins only; the same services as the Oversight and Adjudicate pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import ProjectAccess, project_access
from annotator.api.common import ERROR_RESPONSES, job_status_api
from annotator.models import ReliabilityRun, ReviewItem, Role
from annotator.selectors.oversight import oversight_state
from annotator.services.oversight import reliability_refresh, review_item_gold_set


class ReliabilityRunOutput(serializers.ModelSerializer):
    class Meta:
        model = ReliabilityRun
        fields = ["id", "status", "stage", "progress", "error", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = fields


class OversightOutput(serializers.Serializer):
    blind_share = serializers.FloatField(source="project.blind_share")
    gold_share = serializers.FloatField(source="project.gold_share")
    stale = serializers.BooleanField(
        help_text="Reviews or gold labels arrived since the report: refresh to include them.")
    computed_at = serializers.DateTimeField(source="latest.finished_at", allow_null=True)
    current_run = ReliabilityRunOutput(
        source="state.current", allow_null=True,
        help_text="A refresh in progress, or the last one if it failed or was cancelled.")
    report = serializers.JSONField(
        allow_null=True,
        help_text="The latest estimate: counts; the Dawid-Skene method, iterations and prior; "
        "experts (per expert: username, reviews, blind_reviews, gold_answers, "
        "seconds_per_item, estimated_accuracy, estimated_error, confusion[true][given], gold "
        "{accuracy {k, n, rate, lo, hi}, confusion counts} or null, modes {assisted, blind, "
        "accuracy_gain, seconds_saved, correct_per_minute_gain, excess_over_trust}); "
        "comparison: the same modes pooled over all experts. Null before the first estimate.")


def _oversight_data(access: ProjectAccess) -> dict:
    state = oversight_state(project=access.project)
    return {"project": access.project, "state": state, "stale": state.stale,
            "latest": state.latest, "report": state.report}


class OversightView(APIView):
    @extend_schema(operation_id="oversight_retrieve",
                   responses={200: OversightOutput, **ERROR_RESPONSES},
                   summary="The latest oversight report of the project (admins).")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        return Response(OversightOutput(_oversight_data(access)).data)


class OversightRefreshView(APIView):
    @extend_schema(operation_id="oversight_refresh", request=None,
                   responses={202: ReliabilityRunOutput, **ERROR_RESPONSES},
                   summary="Estimate again in the background (the running estimate, if any, is "
                   "returned instead of starting a second one); poll oversight/runs/<id>/.")
    def post(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        run = reliability_refresh(project=access.project, user=request.user)
        return Response(ReliabilityRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


def _run(access: ProjectAccess, pk: int) -> ReliabilityRun:
    return get_object_or_404(ReliabilityRun, project=access.project, pk=pk)


ReliabilityRunStatusView = job_status_api(
    lookup=_run, output=ReliabilityRunOutput, operation_id="oversight_runs_retrieve",
    description="One reliability estimate's status and progress (admins).", minimum=Role.ADMIN)


class GoldInput(serializers.Serializer):
    gold = serializers.BooleanField(help_text="true marks the item gold, false unmarks it.")


class GoldOutput(serializers.ModelSerializer):
    gold_marked_by = serializers.CharField(source="gold_marked_by.username", allow_null=True,
                                           default=None)

    class Meta:
        model = ReviewItem
        fields = ["id", "state", "adjudicated", "final_verdict", "is_gold", "gold_marked_by",
                  "gold_marked_at"]
        read_only_fields = fields


class GoldView(APIView):
    @extend_schema(operation_id="review_items_gold", request=GoldInput,
                   responses={200: GoldOutput, **ERROR_RESPONSES},
                   summary="Mark an adjudicated item as gold (its final verdict is the gold "
                   "label), or unmark it (admins).")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        item = get_object_or_404(ReviewItem, project=access.project, pk=pk)
        data = GoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = review_item_gold_set(item=item, admin=request.user,
                                    gold=data.validated_data["gold"])
        return Response(GoldOutput(item).data)


urlpatterns = [
    path("projects/<slug:slug>/oversight/", OversightView.as_view(), name="oversight"),
    path("projects/<slug:slug>/oversight/refresh/", OversightRefreshView.as_view(),
         name="oversight_refresh"),
    path("projects/<slug:slug>/oversight/runs/<int:pk>/", ReliabilityRunStatusView.as_view(),
         name="oversight_run_status"),
    path("projects/<slug:slug>/review/items/<int:pk>/gold/", GoldView.as_view(),
         name="review_item_gold"),
]
