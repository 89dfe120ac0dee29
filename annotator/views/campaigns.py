"""Campaign pages: the list, the launch form (admins), and the live detail page with its report."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotator.access import project_access
from annotator.models import Campaign, LearnerVersion, Role
from annotator.selectors.campaigns import (
    campaign_list as select_campaigns,
    campaign_report,
    campaign_stage_rows,
    report_chart_data,
)
from annotator.selectors.endpoints import usage_rows
from annotator.services import campaigns as services
from annotator.services.jobs import job_cancel, job_resume
from annotator.views.jobs import job_action_view, poll_finished

DEFAULT_STRATEGIES = ["direct", "roleplay", "hypothetical"]


class CampaignLaunchForm(forms.Form):
    name = forms.CharField(max_length=120, required=False,
                           help_text="Optional; a name is made up from the settings otherwise.")
    learner_version = forms.ModelChoiceField(queryset=LearnerVersion.objects.none(),
                                             required=False, empty_label="The active learner")
    strategies = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    categories = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False,
                                           help_text="None ticked: every category.")
    budget = forms.IntegerField(min_value=1, max_value=services.MAX_BUDGET, initial=16,
                                help_text="Number of attacks, benign twins and canaries included.")
    samples_per_attack = forms.IntegerField(min_value=1, max_value=services.MAX_SAMPLES, initial=1)
    seed = forms.IntegerField(initial=0)
    held_out = forms.BooleanField(required=False,
                                  help_text="Measure only: its items never feed training.")

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["learner_version"].queryset = LearnerVersion.objects.filter(
            project=project).exclude(status=LearnerVersion.Status.RETIRED)
        self.fields["strategies"].choices = [(s, s) for s in services.known_strategies()]
        self.fields["strategies"].initial = [
            s for s in DEFAULT_STRATEGIES if s in services.known_strategies()]
        bundled = services.known_categories()
        # Categories adopted on the Risks page seed attacks too; they are marked as adopted.
        self.fields["categories"].choices = [
            (c, c.replace("_", " ") + ("" if c in bundled else " (adopted)"))
            for c in services.known_categories(project)]


def _campaign(access, pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("learner_version", "project"),
                             project=access.project, pk=pk)


@require_GET
@login_required
def campaign_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    return render(request, "annotator/campaign_list.html", {
        "access": access, "project": access.project,
        "campaigns": select_campaigns(project=access.project),
    })


@require_http_methods(["GET", "POST"])
@login_required
def campaign_launch(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = CampaignLaunchForm(request.POST or None, project=access.project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.campaign_launch(
                project=access.project, user=request.user, name=data["name"],
                learner_version=data["learner_version"], strategies=data["strategies"],
                categories=data["categories"], budget=data["budget"],
                samples_per_attack=data["samples_per_attack"], seed=data["seed"],
                held_out=data["held_out"])
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Campaign launched; it runs in the background.")
            return redirect(campaign)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotator/campaign_launch.html",
                  {"access": access, "project": access.project, "form": form}, status=status)


def _detail_context(access, campaign: Campaign) -> dict:
    return {"access": access, "project": access.project, "campaign": campaign,
            "stages": campaign_stage_rows(campaign=campaign),
            "usage": usage_rows(usage=campaign.usage)}


@require_GET
@login_required
def campaign_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug)
    campaign = _campaign(access, pk)
    if refresh := poll_finished(request, campaign.is_finished):
        return refresh
    if request.htmx:
        return _status_panel(request, access, campaign)
    context = _detail_context(access, campaign)
    if campaign.progress.get("critique") or campaign.report:
        report = campaign_report(campaign=campaign)
        context.update(report=report, chart_data=report_chart_data(report=report))
    return render(request, "annotator/campaign_detail.html", context)


def _status_panel(request: HttpRequest, access, campaign: Campaign) -> HttpResponse:
    return render(request, "annotator/campaign_detail.html#status",
                  _detail_context(access, campaign))


campaign_cancel = job_action_view(action=job_cancel, lookup=_campaign, panel=_status_panel)
campaign_resume = job_action_view(action=job_resume, lookup=_campaign, panel=_status_panel)
