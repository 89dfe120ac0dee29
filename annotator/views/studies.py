"""Pages for label-source studies: the list, the launch form, a study's progress and results."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from alignment_core.training.config import METHOD_LABELS
from annotator.access import project_access
from annotator.declared_fields import form_fields
from annotator.models import DatasetSnapshot, LabelStudy, Role
from annotator.selectors.studies import (
    studies_for,
    study_chart_data,
    study_result_rows,
    study_stage_rows,
)
from annotator.selectors.training import snapshots_for
from annotator.services.jobs import job_cancel, job_resume
from annotator.services.label_study import STUDY_SETTINGS, StudySettings, label_study_launch
from annotator.views.jobs import job_action_view, poll_finished


class StudyForm(forms.Form):
    """The snapshot, then one field per declared study and training setting (STUDY_SETTINGS)."""

    snapshot = forms.ModelChoiceField(queryset=DatasetSnapshot.objects.none(), empty_label=None)

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = snapshots_for(project=project)
        self.fields.update(form_fields(STUDY_SETTINGS, choice_labels=METHOD_LABELS))

    def settings(self) -> StudySettings:
        return StudySettings(**{s.name: self.cleaned_data.get(s.name) for s in STUDY_SETTINGS})


def _study_or_404(access, pk: int) -> LabelStudy:
    return get_object_or_404(
        LabelStudy.objects.select_related("snapshot", "base_version", "created_by"),
        project=access.project, pk=pk)


@require_GET
@login_required
def study_list(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug)
    return render(request, "annotator/study_list.html", {
        "access": access, "project": access.project,
        "studies": studies_for(project=access.project)[:100]})


@require_http_methods(["GET", "POST"])
@login_required
def study_new(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = StudyForm(request.POST or None, project=access.project,
                     initial={"snapshot": request.GET.get("snapshot")})
    if request.method == "POST" and form.is_valid():
        try:
            study = label_study_launch(project=access.project,
                                       snapshot=form.cleaned_data["snapshot"],
                                       settings=form.settings(), created_by=request.user)
        except ValidationError as error:
            for field, errors in error.message_dict.items() if hasattr(error, "error_dict") \
                    else [(None, error.messages)]:
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Study {study.pk} queued; it runs in the background.")
            return redirect(study)
    return render(request, "annotator/study_form.html", {
        "access": access, "project": access.project, "form": form,
        "has_snapshots": form.fields["snapshot"].queryset.exists()})


def _context(access, study: LabelStudy) -> dict:
    rows = study_result_rows(study=study)
    return {"access": access, "project": access.project, "study": study,
            "stages": study_stage_rows(study=study), "rows": rows,
            "report": (study.results or {}).get("report"),
            "chart_data": study_chart_data(rows=rows)}


def _status_panel(request: HttpRequest, access, study: LabelStudy) -> HttpResponse:
    return render(request, "annotator/study_detail.html#status", _context(access, study))


@require_GET
@login_required
def study_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The study page; htmx polls its status panel while the job runs."""
    access = project_access(request.user, slug)
    study = _study_or_404(access, pk)
    if refresh := poll_finished(request, study.is_finished):
        return refresh
    if request.htmx:
        return _status_panel(request, access, study)
    return render(request, "annotator/study_detail.html", _context(access, study))


study_cancel = job_action_view(action=job_cancel, lookup=_study_or_404, panel=_status_panel)
study_resume = job_action_view(action=job_resume, lookup=_study_or_404, panel=_status_panel)
