"""Campaign API: list, launch, status (with progress and report), cancel, resume.

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

from annotator.access import project_access
from annotator.api.common import ERROR_RESPONSES, cancel_and_resume_apis, job_status_api, paginated
from annotator.models import Campaign, LearnerVersion, Role
from annotator.selectors.campaigns import campaign_list, campaign_report
from annotator.services import campaigns as services


class CampaignOutput(serializers.ModelSerializer):
    learner_version = serializers.IntegerField(source="learner_version_id")
    learner_version_name = serializers.CharField(source="learner_version.name")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = Campaign
        fields = ["id", "name", "status", "stage", "progress", "error", "cancel_requested",
                  "learner_version", "learner_version_name", "strategies", "categories",
                  "budget", "samples_per_attack", "seed", "held_out", "usage", "created_at",
                  "started_at", "finished_at", "heartbeat_at", "url"]
        read_only_fields = fields


class CampaignDetailOutput(CampaignOutput):
    report = serializers.SerializerMethodField()

    class Meta(CampaignOutput.Meta):
        fields = [*CampaignOutput.Meta.fields, "report"]
        read_only_fields = fields

    def get_report(self, campaign: Campaign) -> dict:
        # Live while reviews come in (agreement, human share); empty before any critique.
        if not (campaign.progress.get("critique") or campaign.report):
            return {}
        return campaign_report(campaign=campaign)


class CampaignLaunchInput(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    learner_version = serializers.IntegerField(required=False, allow_null=True, default=None,
                                               help_text="A learner version id; default: active.")
    strategies = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    categories = serializers.ListField(
        child=serializers.CharField(), required=False, default=list,
        help_text="Behaviour categories to attack (default: all, adopted ones included); the "
        "names of categories adopted from discovered risks are accepted too (risks/categories/).")
    budget = serializers.IntegerField(min_value=1, max_value=services.MAX_BUDGET)
    samples_per_attack = serializers.IntegerField(min_value=1, max_value=services.MAX_SAMPLES,
                                                  default=1)
    seed = serializers.IntegerField(default=0)
    held_out = serializers.BooleanField(default=False)


def _campaign(access, pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("learner_version", "project"),
                             project=access.project, pk=pk)


class CampaignListApi(APIView):
    @extend_schema(operation_id="campaigns_list", responses={200: CampaignOutput(many=True),
                                                             **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's campaigns, newest first (viewers and up)."""
        access = project_access(request.user, slug)
        return paginated(self, campaign_list(project=access.project), CampaignOutput)

    @extend_schema(operation_id="campaigns_launch", request=CampaignLaunchInput,
                   responses={201: CampaignDetailOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Launch a campaign (admins); its job is enqueued and runs in the background."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = CampaignLaunchInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version_id = values.pop("learner_version")
        version = None
        if version_id is not None:
            version = LearnerVersion.objects.filter(project=access.project, pk=version_id).first()
            if version is None:
                raise serializers.ValidationError(
                    {"learner_version": ["No such learner version in this project."]})
        campaign = services.campaign_launch(project=access.project, user=request.user,
                                            learner_version=version, **values)
        return Response(CampaignDetailOutput(campaign).data, status=status.HTTP_201_CREATED)


CampaignStatusApi = job_status_api(
    lookup=_campaign, output=CampaignDetailOutput, operation_id="campaigns_status",
    description="A campaign's status, per-stage progress (done, total, rate, ETA) and report.")
CampaignCancelApi, CampaignResumeApi = cancel_and_resume_apis(
    lookup=_campaign, output=CampaignOutput, operation_prefix="campaigns",
    cancelled="Cancel a queued or running campaign (admins); finished batches are kept.",
    resumed="Resume a failed or cancelled campaign from its checkpoints (admins).")


urlpatterns = [
    path("projects/<slug:slug>/campaigns/", CampaignListApi.as_view(), name="campaign_list"),
    path("projects/<slug:slug>/campaigns/<int:pk>/", CampaignStatusApi.as_view(),
         name="campaign_status"),
    path("projects/<slug:slug>/campaigns/<int:pk>/cancel/", CampaignCancelApi.as_view(),
         name="campaign_cancel"),
    path("projects/<slug:slug>/campaigns/<int:pk>/resume/", CampaignResumeApi.as_view(),
         name="campaign_resume"),
]
