"""API: the critic's calibration on expert decisions, its learning curve, and retraining."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import project_access
from annotator.api.common import ERROR_RESPONSES
from annotator.api.projects import AutoAcceptOutput
from annotator.models import Role
from annotator.selectors.critic import (
    auto_accept_status,
    calibration_report,
    critic_status,
    learning_curve,
)
from annotator.services.critic import critic_head_retrain_enqueue


class ReliabilityBinOutput(serializers.Serializer):
    lo = serializers.FloatField()
    hi = serializers.FloatField()
    n = serializers.IntegerField()
    mean_confidence = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)


class CalibrationOutput(serializers.Serializer):
    n = serializers.IntegerField(help_text="Live expert decisions the figures come from.")
    ece = serializers.FloatField(allow_null=True, help_text="Expected calibration error.")
    accuracy = serializers.FloatField(allow_null=True,
                                      help_text="Share of decisions agreeing with the critic.")
    bins = ReliabilityBinOutput(many=True)


class RetrainPointOutput(serializers.Serializer):
    created_at = serializers.DateTimeField()
    trigger = serializers.CharField()
    labels = serializers.IntegerField(help_text="Expert decisions the head was fitted on.")
    accuracy = serializers.FloatField(allow_null=True, help_text="Held-out four-way accuracy.")
    ece = serializers.FloatField(allow_null=True, help_text="Held-out calibration error.")
    calibration = serializers.CharField()


class LearningOutput(serializers.Serializer):
    new_decisions = serializers.IntegerField(help_text="Decisions since the last fit.")
    needed = serializers.IntegerField(help_text="New decisions that trigger a retrain.")
    next_check_at = serializers.DateTimeField(allow_null=True)


class CriticOutput(serializers.Serializer):
    calibration = CalibrationOutput(help_text="Confidence experts saw vs whether they agreed.")
    learning_curve = RetrainPointOutput(many=True)
    learning = LearningOutput()
    auto_accept = AutoAcceptOutput()


class CriticView(APIView):
    @extend_schema(operation_id="critic_retrieve", responses={200: CriticOutput, **ERROR_RESPONSES},
                   summary="The critic's calibration, learning curve and auto-accept state.")
    def get(self, request: Request, slug: str) -> Response:
        project = project_access(request.user, slug).project
        return Response(CriticOutput({
            "calibration": calibration_report(project=project),
            "learning_curve": learning_curve(project=project),
            "learning": critic_status(project=project),
            "auto_accept": auto_accept_status(project=project).as_dict(),
        }).data)


class CriticRetrainView(APIView):
    @extend_schema(operation_id="critic_retrain", request=None,
                   responses={202: None, **ERROR_RESPONSES},
                   summary="Retrain the critic from the experts' decisions now (admins).")
    def post(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, Role.ADMIN)
        critic_head_retrain_enqueue(project=access.project)
        return Response(status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("projects/<slug:slug>/critic/", CriticView.as_view(), name="critic_detail"),
    path("projects/<slug:slug>/critic/retrain/", CriticRetrainView.as_view(),
         name="critic_retrain"),
]
