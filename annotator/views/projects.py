"""Project list, dashboard and guidelines."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from annotator.access import ProjectAccess, project_access, projects_for
from annotator.markdown_render import render_markdown
from annotator.models import Project, Role
from annotator.selectors.critic import auto_accept_status, critic_status
from annotator.selectors.projects import project_overview
from annotator.services.critic import critic_head_retrain_enqueue
from annotator.services.projects import AUTO_ACCEPT_SETTINGS, project_settings_update


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class ProjectSettingsForm(forms.ModelForm):
    """Target precision and audit share: fields, bounds and help text from the model."""

    class Meta:
        model = Project
        fields = AUTO_ACCEPT_SETTINGS


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


def _critic_context(access: ProjectAccess, form: ProjectSettingsForm | None = None) -> dict:
    project = access.project
    return {"access": access, "project": project,
            "auto_accept": auto_accept_status(project=project),
            "critic": critic_status(project=project),
            "settings_form": form or ProjectSettingsForm(instance=project)}


@require_GET
@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    context = {**_critic_context(access), **project_overview(project=access.project)}
    return render(request, "annotator/project_detail.html", context)


@require_POST
@login_required
def project_settings(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Admins set the target precision and the audit share; htmx swaps the critic card."""
    access = project_access(request.user, slug, Role.ADMIN)
    form = ProjectSettingsForm(request.POST, instance=Project.objects.get(pk=access.project.pk))
    if not form.is_valid():
        context = _critic_context(access, form)
        if request.htmx:
            return render(request, "annotator/project_detail.html#critic", context, status=400)
        return render(request, "annotator/project_detail.html",
                      {**context, **project_overview(project=access.project)}, status=400)
    project_settings_update(project=access.project,
                            **{name: form.cleaned_data[name] for name in AUTO_ACCEPT_SETTINGS})
    if request.htmx:
        return render(request, "annotator/project_detail.html#critic", _critic_context(access))
    messages.success(request, "Settings saved.")
    return redirect("annotator:project_detail", slug=access.project.slug)


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
