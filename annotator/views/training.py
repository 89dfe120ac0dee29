"""Pages for curation snapshots, LoRA training runs and learner versions (promote / roll back)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alignment_core.training.config import METHOD_LABELS
from alignment_core.training.label_sources import LABEL_SOURCES, SOURCE_LABELS
from annotator.access import project_access
from annotator.declared_fields import form_fields
from annotator.models import DatasetSnapshot, LearnerVersion, Role, TrainingRun
from annotator.selectors.label_sources import audited_noise
from annotator.selectors.training import (
    evaluation_rows,
    held_out_rounds,
    learners_for,
    snapshot_campaign_choices,
    snapshot_category_choices,
    snapshots_for,
    training_progress,
    training_runs_for,
)
from annotator.services.jobs import job_cancel, job_resume
from annotator.services.learners import learner_promote, learner_roll_back
from annotator.services.snapshots import SnapshotFilters, snapshot_create, snapshot_preview
from annotator.services.training import TRAINING_SETTINGS, TrainingSettings, training_launch
from annotator.views.jobs import job_action_view

EXAMPLES_SHOWN = 50


# -- forms -------------------------------------------------------------------------------------

class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=120)
    campaign = forms.ChoiceField(required=False)
    category = forms.ChoiceField(required=False)
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1,
        help_text="0–1: share of the item's expert decisions that match its final verdict. "
                  "Auto-accepted items have no expert decisions and are left out when set.")
    adjudicated_only = forms.BooleanField(required=False)
    label_sources = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, initial=list(LABEL_SOURCES),
        choices=[(s, SOURCE_LABELS[s]) for s in LABEL_SOURCES],
        help_text="Where the labels come from: experts who agreed, an adjudicated disagreement, "
                  "one expert, or the critic alone (auto-accepted). None ticked keeps all.")
    helpfulness_margin = forms.IntegerField(
        required=False, min_value=0, max_value=4,
        label="Require more harmless chosen answers, losing at most this much helpfulness",
        help_text="0–4 points. Leaves out pairs whose chosen answer is not more harmless than "
                  "the rejected one (or, equally harmless, not more helpful), or loses more "
                  "helpfulness than this. Empty: no check.")
    validation_fraction = forms.FloatField(initial=0.1, min_value=0, max_value=0.5)
    seed = forms.IntegerField(initial=0)

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = snapshot_campaign_choices(project=project)
        self.fields["category"].choices = snapshot_category_choices(project=project)
        self.fields["name"].initial = f"Snapshot {timezone.now():%Y-%m-%d %H:%M}"

    def filters(self) -> SnapshotFilters:
        data = self.cleaned_data
        # Every source ticked, or none, is no restriction (and stores none).
        sources = tuple(data.get("label_sources") or ())
        return SnapshotFilters(campaign_id=int(data["campaign"]) if data.get("campaign") else None,
                               category=data.get("category") or "",
                               min_agreement=data.get("min_agreement"),
                               adjudicated_only=bool(data.get("adjudicated_only")),
                               label_sources=() if set(sources) == set(LABEL_SOURCES) else sources,
                               helpfulness_margin=data.get("helpfulness_margin"))


class TrainingForm(forms.Form):
    """The snapshot, then one field per declared training setting (TRAINING_SETTINGS)."""

    snapshot = forms.ModelChoiceField(queryset=DatasetSnapshot.objects.none(), empty_label=None)

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = snapshots_for(project=project)
        self.fields.update(form_fields(TRAINING_SETTINGS, choice_labels=METHOD_LABELS))

    def settings(self) -> TrainingSettings:
        return TrainingSettings(**{s.name: self.cleaned_data.get(s.name)
                                   for s in TRAINING_SETTINGS})


# -- snapshots ---------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@login_required
def snapshot_new(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = SnapshotForm(request.POST or None, project=access.project)
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = snapshot_create(
                project=access.project, name=form.cleaned_data["name"], created_by=request.user,
                filters=form.filters(), validation_fraction=form.cleaned_data["validation_fraction"],
                seed=form.cleaned_data["seed"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Snapshot {snapshot.name} frozen ({snapshot.content_hash[:12]}).")
            return redirect(snapshot)
    preview = _preview_for(form, access.project) if request.method == "GET" else None
    return render(request, "annotator/snapshot_form.html",
                  {"access": access, "project": access.project, "form": form, "preview": preview})


def _preview_for(form: SnapshotForm, project):
    if form.is_bound and not form.is_valid():
        return None
    if not form.is_bound:
        return snapshot_preview(project=project, filters=SnapshotFilters())
    return snapshot_preview(project=project, filters=form.filters(),
                            validation_fraction=form.cleaned_data["validation_fraction"],
                            seed=form.cleaned_data["seed"] or 0)


@require_GET
@login_required
def snapshot_preview_counts(request: HttpRequest, slug: str) -> HttpResponse:
    """The counts for the filters in the query string (htmx, while the admin edits the form)."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = SnapshotForm(request.GET, project=access.project)
    return render(request, "annotator/snapshot_form.html#preview",
                  {"access": access, "project": access.project, "form": form,
                   "preview": _preview_for(form, access.project)})


@require_GET
@login_required
def snapshot_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug)
    snapshot = get_object_or_404(DatasetSnapshot.objects.select_related("created_by"),
                                 project=access.project, pk=pk)
    examples = snapshot.examples.all()[:EXAMPLES_SHOWN]
    counts = snapshot.source_counts()
    return render(request, "annotator/snapshot_detail.html",
                  {"access": access, "project": access.project, "snapshot": snapshot,
                   "examples": examples, "shown": EXAMPLES_SHOWN,
                   "source_counts": [(SOURCE_LABELS[s], counts[s]) for s in LABEL_SOURCES],
                   "runs": snapshot.training_runs.all()})


# -- training runs -----------------------------------------------------------------------------

@require_GET
@login_required
def training_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    return render(request, "annotator/training_list.html", {
        "access": access, "project": access.project,
        "runs": training_runs_for(project=access.project)[:100],
        "snapshots": snapshots_for(project=access.project)[:20],
    })


@require_http_methods(["GET", "POST"])
@login_required
def training_new(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    noise = audited_noise(project=access.project)
    initial = {"snapshot": request.GET.get("snapshot")}
    if noise.label_smoothing is not None:
        # The audited critic-expert disagreement is the estimate of the labels' noise rate.
        initial["label_smoothing"] = noise.label_smoothing
    form = TrainingForm(request.POST or None, project=access.project, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            run = training_launch(project=access.project, snapshot=form.cleaned_data["snapshot"],
                                  settings=form.settings(), created_by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Training run {run.pk} queued.")
            return redirect(run)
    return render(request, "annotator/training_form.html",
                  {"access": access, "project": access.project, "form": form, "noise": noise,
                   "has_snapshots": form.fields["snapshot"].queryset.exists()})


def _run_or_404(access, pk: int) -> TrainingRun:
    return get_object_or_404(
        TrainingRun.objects.select_related("snapshot", "base_version", "output_version",
                                           "created_by"),
        project=access.project, pk=pk)


def _detail(request: HttpRequest, access, run: TrainingRun) -> HttpResponse:
    template = "annotator/training_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, {
        "access": access, "project": access.project, "run": run,
        "progress": training_progress(run), "summary": (run.evaluation or {}).get("summary"),
    })


@require_GET
@login_required
def training_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The run page; htmx polls it for the progress panel while the run is active."""
    access = project_access(request.user, slug)
    return _detail(request, access, _run_or_404(access, pk))


training_cancel_view = job_action_view(action=job_cancel, lookup=_run_or_404, panel=_detail)
training_resume_view = job_action_view(action=job_resume, lookup=_run_or_404, panel=_detail)


@require_GET
@login_required
def training_log(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug)
    run = _run_or_404(access, pk)
    template = "annotator/training_log.html" + ("#log" if request.htmx else "")
    return render(request, template, {"access": access, "project": access.project, "run": run})


@require_GET
@login_required
def training_compare(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Base vs candidate on the held-out attacks, side by side with 95% intervals."""
    access = project_access(request.user, slug)
    run = _run_or_404(access, pk)
    evaluation = run.evaluation or {}
    return render(request, "annotator/training_compare.html", {
        "access": access, "project": access.project, "run": run, "rows": evaluation_rows(run),
        "evaluation": evaluation, "metrics": run.metrics or {},
        "items": list(zip(evaluation.get("base", {}).get("items", []),
                          evaluation.get("candidate", {}).get("items", []))),
    })


# -- learner versions --------------------------------------------------------------------------

@require_GET
@login_required
def learner_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    versions = list(learners_for(project=access.project))
    active = next((v for v in versions if v.status == LearnerVersion.Status.ACTIVE), None)
    runs = {r.output_version_id: r for r in
            TrainingRun.objects.filter(project=access.project, output_version__isnull=False)
            .only("id", "output_version_id", "project_id", "method")}
    for version in versions:
        version.run = runs.get(version.pk)
    return render(request, "annotator/learner_list.html", {
        "access": access, "project": access.project, "versions": versions, "active": active,
        "rounds": held_out_rounds(project=access.project),
    })


@require_POST
@login_required
def learner_promote_view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    version = get_object_or_404(LearnerVersion, project=access.project, pk=pk)
    try:
        learner_promote(version=version, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{version.name} is now the active learner; new campaigns "
                                  "attack it.")
    return redirect("annotator:learner_list", slug=access.project.slug)


@require_POST
@login_required
def learner_roll_back_view(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    try:
        version = learner_roll_back(project=access.project, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Rolled back: {version.name} is the active learner again.")
    return redirect("annotator:learner_list", slug=access.project.slug)
