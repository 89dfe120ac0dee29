"""API: the projects I belong to, and one project with my role in it."""

from __future__ import annotations

from django.db.models import CharField, OuterRef, Subquery, Value
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import ProjectAccess, project_access, projects_for
from annotator.api.common import ERROR_RESPONSES, paginated
from annotator.models import Membership, Project, Role
from annotator.selectors.critic import auto_accept_status
from annotator.selectors.projects import project_overview
from annotator.services.projects import PROJECT_SETTINGS, project_settings_update


class ProjectOutput(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="My role in the project.")
    reviews_per_item = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class AutoAcceptOutput(serializers.Serializer):
    target = serializers.FloatField(help_text="The project's target precision.")
    level = serializers.FloatField(help_text="Confidence level of the one-sided bound.")
    audits = serializers.IntegerField(help_text="Audited items with a final expert verdict.")
    threshold = serializers.FloatField(
        allow_null=True, help_text="Confidence from which items are auto-accepted; null: none.")
    lower_bound = serializers.FloatField(
        allow_null=True, help_text="Clopper-Pearson lower bound on precision above it.")
    audits_above = serializers.IntegerField()
    correct_above = serializers.IntegerField()
    lower_to = serializers.FloatField(
        allow_null=True, help_text="The next lower threshold more audits could unlock.")
    more_audits = serializers.IntegerField(
        allow_null=True, help_text="How many more audits, all right, would unlock it.")


class ItemCounts(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    disagreement = serializers.IntegerField()
    curated = serializers.IntegerField()


class ProjectDetailOutput(ProjectOutput):
    guidelines = serializers.CharField(help_text="Markdown.")
    target_precision = serializers.FloatField(
        help_text="Auto-accept only where audits show at least this precision (95% bound).")
    audit_rate = serializers.FloatField(
        help_text="Share of new items audited once a threshold exists (all until then).")
    auto_accept = AutoAcceptOutput(help_text="The threshold the project's audits support.")
    blind_share = serializers.FloatField(
        help_text="Share of items each expert reviews without the critic's verdict.")
    gold_share = serializers.FloatField(
        help_text="Share of each expert's queue that serves gold items unannounced.")
    active_learner = serializers.CharField(allow_null=True)
    items = ItemCounts()


class ProjectSettingsInput(serializers.ModelSerializer):
    """The admin settings (fields, bounds and help text from the Project model; send only what
    changes)."""

    class Meta:
        model = Project
        fields = PROJECT_SETTINGS

    def to_internal_value(self, data):
        # A misspelt or read-only setting is refused, not silently ignored.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({"non_field_errors": [
                    f"Unknown or read-only setting(s): {', '.join(unknown)}."]})
        return super().to_internal_value(data)


class ProjectListView(APIView):
    @extend_schema(
        operation_id="projects_list", responses={200: ProjectOutput(many=True), **ERROR_RESPONSES},
        parameters=[OpenApiParameter("role", str, enum=Role.values,
                                     description="Only projects where my role is this.")],
        summary="The projects I am a member of (all of them for superusers), with my role.")
    def get(self, request: Request) -> Response:
        user = request.user
        projects = projects_for(user)
        if user.is_superuser:
            projects = projects.annotate(role=Value(Role.ADMIN.value, output_field=CharField()))
        else:
            mine = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
            projects = projects.annotate(role=Subquery(mine))
        wanted = request.query_params.get("role")
        if wanted:
            if wanted not in Role.values:
                raise serializers.ValidationError({"role": [f"Use one of {', '.join(Role.values)}."]})
            projects = projects.filter(role=wanted)
        return paginated(self, projects, ProjectOutput)


def _detail(access: ProjectAccess) -> dict:
    project = access.project
    overview = project_overview(project=project)
    project.role = access.role.value
    project.items = overview["items"]
    project.active_learner = overview["active_learner"].name if overview["active_learner"] else None
    project.auto_accept = auto_accept_status(project=project).as_dict()
    return ProjectDetailOutput(project).data


class ProjectDetailView(APIView):
    @extend_schema(operation_id="projects_retrieve",
                   responses={200: ProjectDetailOutput, **ERROR_RESPONSES},
                   summary="One project, my role in it, its review counts and auto-accept state.")
    def get(self, request: Request, slug: str) -> Response:
        return Response(_detail(project_access(request.user, slug)))

    @extend_schema(operation_id="projects_settings_update", request=ProjectSettingsInput,
                   responses={200: ProjectDetailOutput, **ERROR_RESPONSES},
                   summary="Change the project's settings: target precision, audit share, blind share "
                   "and gold share (admins).")
    def patch(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, Role.ADMIN)
        data = ProjectSettingsInput(instance=access.project, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_settings_update(project=access.project, **data.validated_data)
        return Response(_detail(access))


urlpatterns = [
    path("projects/", ProjectListView.as_view(), name="project_list"),
    path("projects/<slug:slug>/", ProjectDetailView.as_view(), name="project_detail"),
]
