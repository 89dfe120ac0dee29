"""The Risks page: clusters of successful attacks that no category explains, the map, the
discovery job's progress, and the admins' Adopt and Dismiss (htmx, with full-page fallbacks)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from alignment_core.risks.adopt import category_slug
from annotator.access import ProjectAccess, project_access
from annotator.models import DiscoveredRisk, RiskDiscovery, Role
from annotator.selectors.risks import risk_page, risk_rows, risk_status
from annotator.services.jobs import job_cancel, job_resume
from annotator.services.risks import risk_adopt, risk_discovery_start, risk_dismiss
from annotator.views.jobs import job_action_view, poll_finished

PAGE = "annotator/risks.html"


class AdoptForm(forms.Form):
    category = forms.CharField(max_length=60, label="New category", help_text=(
        "Lower-case letters, digits and underscores, e.g. ivory_trade; spaces become "
        "underscores."))


def _risk(access: ProjectAccess, pk: int) -> DiscoveredRisk:
    return get_object_or_404(DiscoveredRisk.objects.select_related("discovery"),
                             discovery__project=access.project, pk=pk)


def _discovery(access: ProjectAccess, pk: int) -> RiskDiscovery:
    return get_object_or_404(RiskDiscovery, project=access.project, pk=pk)


def _home(slug: str) -> str:
    return reverse("annotator:risks_home", args=[slug])


def _status_context(access: ProjectAccess, **extra: object) -> dict:
    """The status panel's context alone: what its poll and the job buttons render."""
    return {"access": access, "project": access.project, **risk_status(project=access.project),
            **extra}


def _context(access: ProjectAccess, **extra: object) -> dict:
    context = {"access": access, "project": access.project, **risk_page(project=access.project)}
    for row in [*context["open"], *context["dismissed"], *context["adopted"]]:
        row["suggested"] = category_slug(row["cluster"].get("name", ""))
    context.update(extra)
    return context


@require_GET
@login_required
def risks_home(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    if request.htmx and request.GET.get("poll"):
        # Every two seconds while a run is active: the panel's reads only, not every cluster.
        context = _status_context(access)
        current = context["current"]
        if refresh := poll_finished(request, current is None or current.is_finished):
            return refresh
        return render(request, f"{PAGE}#status", context)
    return render(request, PAGE, _context(access))


def _status_panel(request: HttpRequest, access: ProjectAccess, _job: RiskDiscovery | None = None,
                  **extra: object) -> HttpResponse:
    return render(request, f"{PAGE}#status", _status_context(access, **extra))


@require_POST
@login_required
def risk_discovery_run(request: HttpRequest, slug: str) -> HttpResponse:
    """An admin starts a discovery run now."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    try:
        risk_discovery_start(project=access.project, user=request.user)
    except ValidationError as error:
        if request.htmx:
            return _status_panel(request, access, run_error=" ".join(error.messages))
        messages.error(request, " ".join(error.messages))
    else:
        if request.htmx:
            return _status_panel(request, access)
        messages.success(request, "Risk discovery queued; this page shows its progress.")
    return redirect(_home(slug))


def _discovery_home(job: RiskDiscovery) -> str:
    return _home(job.project.slug)


risk_discovery_cancel = job_action_view(action=job_cancel, lookup=_discovery,
                                        panel=_status_panel, home=_discovery_home)
risk_discovery_resume = job_action_view(action=job_resume, lookup=_discovery,
                                        panel=_status_panel, home=_discovery_home)


def _card(request: HttpRequest, access: ProjectAccess, risk: DiscoveredRisk, *, status: int = 200,
          errors: list[str] = (), value: str | None = None) -> HttpResponse:
    """One cluster's card (htmx), with the adopt form's errors and value when it failed."""
    row = next(row for row in risk_rows(discovery=risk.discovery) if row["risk"].pk == risk.pk)
    row.update(suggested=category_slug(row["cluster"].get("name", "")), errors=list(errors),
               value=value)
    return render(request, f"{PAGE}#risk_card", {"access": access, "project": access.project,
                                                 "row": row}, status=status)


def _failed(request: HttpRequest, access: ProjectAccess, risk: DiscoveredRisk, errors: list[str],
            value: str | None) -> HttpResponse:
    """A refused Adopt or Dismiss changes nothing: the card (htmx) or the page (a plain form
    post) again, with the errors where the admin acted, and status 400."""
    if request.htmx:
        return _card(request, access, risk, status=400, errors=errors, value=value)
    context = _context(access)
    for row in [*context["open"], *context["dismissed"], *context["adopted"]]:
        if row["risk"].pk == risk.pk:
            row.update(errors=errors, value=value)
    return render(request, PAGE, context, status=400)


@require_POST
@login_required
def risk_adopt_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Adopt a cluster as a new category whose attacks seed the next campaigns."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    risk = _risk(access, pk)
    form = AdoptForm(request.POST)
    value = request.POST.get("category", "")
    if not form.is_valid():
        return _failed(request, access, risk, [e for errors in form.errors.values()
                                               for e in errors], value)
    try:
        category = risk_adopt(risk=risk, user=request.user, category=form.cleaned_data["category"])
    except ValidationError as error:
        return _failed(request, access, risk, error.messages, value)
    if request.htmx:
        return _card(request, access, risk)
    messages.success(request, f"Adopted as {category.name}: new campaigns attack with its "
                              f"{len(category.behaviours)} seed behaviours.")
    return redirect(_home(slug))


@require_POST
@login_required
def risk_dismiss_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Dismiss a cluster: hidden from the list, and remembered by later runs."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    risk = _risk(access, pk)
    try:
        risk_dismiss(risk=risk, user=request.user)
    except ValidationError as error:
        return _failed(request, access, risk, error.messages, None)
    if request.htmx:
        return _card(request, access, risk)
    messages.success(request, f"Dismissed {risk.data.get('name', 'the cluster')}; later runs "
                              "remember it.")
    return redirect(_home(slug))
