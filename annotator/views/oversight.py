"""The Oversight page (admins): what a human minute is worth, per expert and with or without the
critic; the Refresh of the reliability estimate, and the blind and gold shares."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from alignment_core.critic.base import VERDICTS
from annotator.access import ProjectAccess, project_access
from annotator.models import Project, Role
from annotator.selectors.oversight import (
    oversight_chart_data,
    oversight_expert_rows,
    oversight_state,
)
from annotator.services.oversight import reliability_refresh
from annotator.services.projects import OVERSIGHT_SETTINGS, project_settings_update
from annotator.views.jobs import poll_finished


class OversightSettingsForm(forms.ModelForm):
    """The blind and gold shares, with the model's own checks and help (fractions 0-1)."""

    class Meta:
        model = Project
        fields = OVERSIGHT_SETTINGS


def _context(access: ProjectAccess, form: OversightSettingsForm | None = None) -> dict:
    state = oversight_state(project=access.project)
    return {"access": access, "project": access.project, "state": state,
            "report": state.report, "chart_data": oversight_chart_data(report=state.report),
            "experts": oversight_expert_rows(report=state.report), "verdicts": VERDICTS,
            "modes": ([state.report["comparison"][mode] for mode in ("assisted", "blind")]
                      if state.report else []),
            "form": form or OversightSettingsForm(instance=access.project)}


def _report_panel(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    return render(request, "annotator/oversight.html#report", _context(access))


@require_GET
@login_required
def oversight(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    if request.htmx:
        if refresh := poll_finished(request, not oversight_state(project=access.project).is_active):
            return refresh
        return _report_panel(request, access)
    return render(request, "annotator/oversight.html", _context(access))


@require_POST
@login_required
def oversight_refresh(request: HttpRequest, slug: str) -> HttpResponse:
    """Estimate reliability again, in the background (one run at a time per project)."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    reliability_refresh(project=access.project, user=request.user)
    if request.htmx:
        return _report_panel(request, access)
    messages.success(request, "The reliability estimate is being refreshed in the background.")
    return redirect("annotator:oversight", slug=slug)


@require_POST
@login_required
def oversight_settings(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = OversightSettingsForm(request.POST, instance=Project.objects.get(pk=access.project.pk))
    if form.is_valid():
        try:
            project_settings_update(project=access.project, **{
                name: form.cleaned_data[name] for name in OVERSIGHT_SETTINGS})
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Saved. Items already open keep the mode they were "
                                      "served in; the next ones follow the new shares.")
            return redirect("annotator:oversight", slug=slug)
    return render(request, "annotator/oversight.html", _context(access, form), status=400)
