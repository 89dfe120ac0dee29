"""Project list, dashboard and guidelines."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.access import project_access, projects_for
from annotator.markdown_render import render_markdown
from annotator.models import Role
from annotator.selectors.projects import project_overview
from annotator.services.critic import critic_head_retrain_enqueue


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("annotator:project_list")
    return redirect("login")


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = projects_for(request.user).order_by("name")
    return render(request, "annotator/project_list.html", {"projects": projects})


@require_GET
@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    context = {"access": access, "project": access.project,
               **project_overview(project=access.project)}
    return render(request, "annotator/project_detail.html", context)


@require_GET
@login_required
def project_guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    template = "annotator/guidelines.html"
    if request.htmx:
        template += "#guidelines"
    return render(request, template, {"access": access, "project": access.project,
                                      "guidelines_html": render_markdown(access.project.guidelines)})


@require_POST
@login_required
def critic_retrain(request: HttpRequest, slug: str) -> HttpResponse:
    """Admins retrain the critic's head from expert decisions, in the background."""
    access = project_access(request.user, slug, Role.ADMIN)
    critic_head_retrain_enqueue(project=access.project)
    messages.success(request, "The critic is being retrained from your experts' decisions; "
                              "new campaigns use it once the worker has finished.")
    return redirect("annotator:project_detail", slug=access.project.slug)
