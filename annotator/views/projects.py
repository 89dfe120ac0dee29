"""Project list, dashboard and guidelines."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from annotator.access import project_access, projects_for
from annotator.markdown_render import render_markdown
from annotator.selectors.projects import project_overview


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
