"""API: the projects I belong to, and one project with my role in it."""

from __future__ import annotations

from django.db.models import CharField, OuterRef, Subquery, Value
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.access import project_access, projects_for
from annotator.api.common import ERROR_RESPONSES, paginated
from annotator.models import Membership, Project, Role
from annotator.selectors.projects import project_overview
from annotator.services.oversight import OVERSIGHT_SETTINGS, project_oversight_update


class ProjectOutput(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="My role in the project.")
    reviews_per_item = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ItemCounts(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    disagreement = serializers.IntegerField()
    curated = serializers.IntegerField()


class ProjectDetailOutput(ProjectOutput):
    guidelines = serializers.CharField(help_text="Markdown.")
    auto_accept_threshold = serializers.FloatField(allow_null=True)
    audit_rate = serializers.FloatField()
    blind_share = serializers.FloatField()
    gold_share = serializers.FloatField()
    active_learner = serializers.CharField(allow_null=True)
    items = ItemCounts()


class ProjectSettingsInput(serializers.ModelSerializer):
    """The project settings the API changes (every field optional: send what changes)."""

    class Meta:
        model = Project
        fields = OVERSIGHT_SETTINGS
        extra_kwargs = {name: {"required": False} for name in OVERSIGHT_SETTINGS}

    def to_internal_value(self, data):
        # A misspelt or unsupported setting is refused, not silently ignored.
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


class ProjectDetailView(APIView):
    @extend_schema(operation_id="projects_retrieve",
                   responses={200: ProjectDetailOutput, **ERROR_RESPONSES},
                   summary="One project, my role in it and its review counts.")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug)
        return self._detail(access)

    @extend_schema(operation_id="projects_partial_update", request=ProjectSettingsInput,
                   responses={200: ProjectDetailOutput, **ERROR_RESPONSES},
                   summary="Change the project's settings: blind share and gold share (admins).")
    def patch(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        data = ProjectSettingsInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_oversight_update(project=access.project, **data.validated_data)
        return self._detail(access)

    def _detail(self, access) -> Response:
        project = access.project
        overview = project_overview(project=project)
        project.role = access.role.value
        project.items = overview["items"]
        project.active_learner = overview["active_learner"].name if overview["active_learner"] else None
        return Response(ProjectDetailOutput(project).data)


urlpatterns = [
    path("projects/", ProjectListView.as_view(), name="project_list"),
    path("projects/<slug:slug>/", ProjectDetailView.as_view(), name="project_detail"),
]
