"""Risk discovery API: discovery runs (list, start, status, cancel, resume), the newest run's
clusters, Adopt and Dismiss, and the adopted categories.

The same role checks and services as the Risks page: viewers read, admins act.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import project_access
from annotator.api.common import ERROR_RESPONSES, cancel_and_resume_apis, job_status_api, paginated
from annotator.models import DiscoveredRisk, RiskCategory, RiskDecision, RiskDiscovery, Role
from annotator.selectors.risks import adopted_categories, discovery_list, latest_discovery
from annotator.services.risks import risk_adopt, risk_discovery_start, risk_dismiss


class RiskDecisionOutput(serializers.ModelSerializer):
    category = serializers.CharField(source="category.name", allow_null=True, default=None,
                                     help_text="The adopted category (adoptions only).")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True,
                                       default=None)

    class Meta:
        model = RiskDecision
        fields = ["action", "category", "cluster_key", "decided_by", "decided_at"]
        read_only_fields = fields


class RiskClusterOutput(serializers.Serializer):
    """One discovered cluster (alignment_core's RiskCluster) with the admins' decision on it.
    Attack ids are Response ids (see critiques/ for their texts)."""

    id = serializers.IntegerField(help_text="Use it to adopt or dismiss the cluster.")
    discovery = serializers.IntegerField(source="discovery_id")
    key = serializers.CharField(help_text="The same members give the same key on every run.")
    rank = serializers.IntegerField()
    score = serializers.FloatField(help_text="novelty × weight × severity / 4")
    name = serializers.CharField(source="data.name")
    named_by = serializers.CharField(source="data.named_by")
    keywords = serializers.ListField(child=serializers.CharField(), source="data.keywords")
    size = serializers.IntegerField(source="data.size")
    weight = serializers.FloatField(source="data.weight",
                                    help_text="Summed attack weights (expert-confirmed: 3).")
    severity = serializers.FloatField(source="data.severity")
    novelty = serializers.FloatField(source="data.novelty")
    nearest_category = serializers.CharField(source="data.nearest_category", allow_null=True)
    position = serializers.ListField(child=serializers.FloatField(), source="data.position")
    member_ids = serializers.ListField(child=serializers.IntegerField(), source="data.member_ids")
    example_ids = serializers.ListField(child=serializers.IntegerField(),
                                        source="data.example_ids")
    filed_under = serializers.DictField(child=serializers.IntegerField(),
                                        source="data.filed_under")
    decision = RiskDecisionOutput(allow_null=True)


class RiskDiscoveryOutput(serializers.ModelSerializer):
    campaigns = serializers.PrimaryKeyRelatedField(many=True, read_only=True,
                                                   help_text="The campaigns and imports read.")
    clusters = serializers.IntegerField(source="risks.count", read_only=True)

    class Meta:
        model = RiskDiscovery
        fields = ["id", "status", "stage", "progress", "error", "cancel_requested", "trigger",
                  "after_campaign", "campaigns", "considered", "noise", "clusters",
                  "created_at", "started_at", "finished_at", "heartbeat_at"]
        read_only_fields = fields


class RiskDiscoveryDetailOutput(RiskDiscoveryOutput):
    risks = RiskClusterOutput(many=True, read_only=True)
    points = serializers.JSONField(read_only=True, help_text=(
        "The 2-D map: one {id, x, y, cluster_id} per clustered attack (cluster_id: a key)."))

    class Meta(RiskDiscoveryOutput.Meta):
        fields = [*RiskDiscoveryOutput.Meta.fields, "risks", "points"]
        read_only_fields = fields


class RiskCategoryOutput(serializers.ModelSerializer):
    class Meta:
        model = RiskCategory
        fields = ["name", "title", "keywords", "behaviours", "source_ids", "created_at"]
        read_only_fields = fields


class AdoptInput(serializers.Serializer):
    category = serializers.CharField(max_length=60, help_text=(
        "The new category's name: 2-40 lower-case letters, digits or underscores."))


def _discovery(access, pk: int) -> RiskDiscovery:
    return get_object_or_404(RiskDiscovery, project=access.project, pk=pk)


def _risk(access, pk: int) -> DiscoveredRisk:
    return get_object_or_404(DiscoveredRisk.objects.select_related("discovery"),
                             discovery__project=access.project, pk=pk)


def _clusters(discovery: RiskDiscovery):
    return discovery.risks.select_related("decision__category", "decision__decided_by")


class RiskDiscoveryListApi(APIView):
    @extend_schema(operation_id="risk_discoveries_list",
                   responses={200: RiskDiscoveryOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The project's discovery runs, newest first (viewers and up)."""
        access = project_access(request.user, slug)
        return paginated(self, discovery_list(project=access.project), RiskDiscoveryOutput)

    @extend_schema(operation_id="risk_discoveries_start", request=None,
                   responses={202: RiskDiscoveryOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str) -> Response:
        """Start a discovery run now (admins); refused while one is queued or running."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        discovery = risk_discovery_start(project=access.project, user=request.user)
        return Response(RiskDiscoveryOutput(discovery).data, status=status.HTTP_202_ACCEPTED)


RiskDiscoveryStatusApi = job_status_api(
    lookup=_discovery, output=RiskDiscoveryDetailOutput, operation_id="risk_discoveries_status",
    description="A discovery run's status, per-stage progress and, once it finished, its "
    "clusters (by score) and map.")
RiskDiscoveryCancelApi, RiskDiscoveryResumeApi = cancel_and_resume_apis(
    lookup=_discovery, output=RiskDiscoveryOutput, operation_prefix="risk_discoveries",
    cancelled="Cancel a queued or running discovery run (admins); vectors already embedded "
    "stay in the cache.",
    resumed="Run a failed or cancelled discovery again (admins); cached vectors make it cheap.")


class RiskClusterListApi(APIView):
    @extend_schema(
        operation_id="risk_clusters_list",
        parameters=[OpenApiParameter("state", str, enum=["open", "adopted", "dismissed", "all"],
                                     description="Which clusters (default: open ones).")],
        responses={200: RiskClusterOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The clusters of the newest finished discovery run, highest score first (viewers and
        up); empty before any run finished."""
        access = project_access(request.user, slug)
        state = request.query_params.get("state", "open")
        if state not in ("open", "adopted", "dismissed", "all"):
            raise serializers.ValidationError({"state": ["Use open, adopted, dismissed or all."]})
        discovery = latest_discovery(project=access.project)
        if discovery is None:
            return Response([])
        clusters = _clusters(discovery).order_by("rank")
        if state == "open":
            clusters = clusters.filter(decision__isnull=True)
        elif state != "all":
            action = {"adopted": RiskDecision.Action.ADOPT,
                      "dismissed": RiskDecision.Action.DISMISS}[state]
            clusters = clusters.filter(decision__action=action)
        return Response(RiskClusterOutput(clusters, many=True).data)


class RiskAdoptApi(APIView):
    @extend_schema(operation_id="risk_clusters_adopt", request=AdoptInput,
                   responses={201: RiskCategoryOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str, pk: int) -> Response:
        """Adopt a cluster of the newest run as a new category (admins): its representative
        requests become seed behaviours of the next campaigns. Bad or taken names are a 400
        and change nothing."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        risk = _risk(access, pk)
        data = AdoptInput(data=request.data)
        data.is_valid(raise_exception=True)
        category = risk_adopt(risk=risk, user=request.user,
                              category=data.validated_data["category"])
        return Response(RiskCategoryOutput(category).data, status=status.HTTP_201_CREATED)


class RiskDismissApi(APIView):
    @extend_schema(operation_id="risk_clusters_dismiss", request=None,
                   responses={200: RiskClusterOutput, **ERROR_RESPONSES})
    def post(self, request: Request, slug: str, pk: int) -> Response:
        """Dismiss a cluster of the newest run (admins); later runs remember it."""
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        risk = _risk(access, pk)
        risk_dismiss(risk=risk, user=request.user)
        risk.refresh_from_db()
        return Response(RiskClusterOutput(risk).data)


class RiskCategoryListApi(APIView):
    @extend_schema(operation_id="risk_categories_list",
                   responses={200: RiskCategoryOutput(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, slug: str) -> Response:
        """The categories adopted from clusters, with their seed behaviours (viewers and up);
        campaigns accept their names in `categories`."""
        access = project_access(request.user, slug)
        return Response(RiskCategoryOutput(adopted_categories(project=access.project),
                                           many=True).data)


urlpatterns = [
    path("projects/<slug:slug>/risks/discoveries/", RiskDiscoveryListApi.as_view(),
         name="risk_discovery_list"),
    path("projects/<slug:slug>/risks/discoveries/<int:pk>/", RiskDiscoveryStatusApi.as_view(),
         name="risk_discovery_status"),
    path("projects/<slug:slug>/risks/discoveries/<int:pk>/cancel/",
         RiskDiscoveryCancelApi.as_view(), name="risk_discovery_cancel"),
    path("projects/<slug:slug>/risks/discoveries/<int:pk>/resume/",
         RiskDiscoveryResumeApi.as_view(), name="risk_discovery_resume"),
    path("projects/<slug:slug>/risks/clusters/", RiskClusterListApi.as_view(),
         name="risk_cluster_list"),
    path("projects/<slug:slug>/risks/clusters/<int:pk>/adopt/", RiskAdoptApi.as_view(),
         name="risk_adopt"),
    path("projects/<slug:slug>/risks/clusters/<int:pk>/dismiss/", RiskDismissApi.as_view(),
         name="risk_dismiss"),
    path("projects/<slug:slug>/risks/categories/", RiskCategoryListApi.as_view(),
         name="risk_category_list"),
]
