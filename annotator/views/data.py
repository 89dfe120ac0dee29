"""Data pages: exports (start, watch, download), imports (upload) and my API tokens."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator.access import project_access
from annotator.export_filters import EXPORT_FILTERS, ExportFilter
from annotator.models import ApiToken, Export, Role
from annotator.services.exports import export_create, export_file_response
from annotator.services.imports import IMPORT_KINDS, ImportFileError, import_file
from annotator.services.jobs import job_cancel
from annotator.services.tokens import token_create, token_revoke
from annotator.views.jobs import job_action_view


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=Export.Format.choices)
    include_provenance = forms.BooleanField(
        required=False, initial=True,
        help_text="Review ids, pseudonymous expert ids, critic, learner version, campaign, "
        "strategy, category, agreement and timestamps.")
    snapshot = forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                      help_text="Export a frozen snapshot instead of live labels.")

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].choices = [("", "live curated labels"), *(
            (s.pk, str(s)) for s in project.snapshots.all()[:100])]
        campaigns = [(c.pk, c.name) for c in project.campaigns.all()[:200]]
        self.fields.update({spec.key: _filter_field(spec, campaigns) for spec in EXPORT_FILTERS})

    def filters(self) -> dict:
        data = self.cleaned_data
        return {spec.key: data[spec.key] for spec in EXPORT_FILTERS
                if data.get(spec.key) not in (None, "", False)}


def _filter_field(spec: ExportFilter, campaigns: list[tuple[int, str]]) -> forms.Field:
    """The form field of one declared export filter (the service validates the value)."""
    common = {"required": False, "label": spec.label or None, "help_text": spec.help}
    if spec.kind == "campaign":
        return forms.TypedChoiceField(coerce=int, empty_value=None,
                                      choices=[("", "all"), *campaigns], **common)
    if spec.kind == "choice":
        return forms.ChoiceField(choices=[("", spec.empty_label), *spec.choices], **common)
    if spec.kind == "fraction":
        return forms.FloatField(min_value=0, max_value=1, **common)
    if spec.kind == "flag":
        return forms.BooleanField(**common)
    return forms.CharField(max_length=64, **common)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(choices=list(IMPORT_KINDS.items()))
    file = forms.FileField()


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. 'CI' or 'laptop'.")


def _exports_context(access, form=None) -> dict:
    exports = Export.objects.filter(project=access.project).select_related("snapshot")[:50]
    return {"access": access, "project": access.project, "exports": exports,
            "form": form or ExportForm(project=access.project),
            "import_form": ImportForm()}


@require_GET
@login_required
def data_home(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    return render(request, "annotator/data.html", _exports_context(access))


@require_POST
@login_required
def export_new(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = ExportForm(request.POST, project=access.project)
    if form.is_valid():
        snapshot_id = form.cleaned_data["snapshot"]
        try:
            export_create(project=access.project, user=request.user,
                          format=form.cleaned_data["format"], filters=form.filters(),
                          include_provenance=form.cleaned_data["include_provenance"],
                          snapshot=access.project.snapshots.filter(pk=snapshot_id).first()
                          if snapshot_id else None)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            messages.success(request, "Export queued; it appears below with its progress.")
            return redirect("annotator:data_home", slug)
    return render(request, "annotator/data.html", _exports_context(access, form), status=400)


@require_GET
@login_required
def export_row(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One export's table row; the page polls it while the job runs."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    return _export_row(request, access, _export(access, pk))


def _export(access, pk: int) -> Export:
    return get_object_or_404(Export, project=access.project, pk=pk)


def _export_row(request: HttpRequest, access, export: Export) -> HttpResponse:
    return render(request, "annotator/data_export_row.html",
                  {"access": access, "project": access.project, "export": export})


export_cancel = job_action_view(action=job_cancel, lookup=_export, panel=_export_row,
                                home=lambda export: reverse("annotator:data_home",
                                                            args=[export.project.slug]))


@require_GET
@login_required
def export_download(request: HttpRequest, slug: str, pk: int):
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    export = get_object_or_404(Export, project=access.project, pk=pk)
    response = export_file_response(export)
    if response is None:  # not finished: the API answers 409, the page explains instead
        messages.error(request, f"Export {export.pk} has no file to download yet.")
        return redirect("annotator:data_home", slug)
    return response


@require_http_methods(["GET", "POST"])
@login_required
def data_import(request: HttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = import_file(project=access.project, user=request.user,
                                 kind=form.cleaned_data["kind"], filename=upload.name,
                                 stream=upload)
        except ImportFileError as error:
            problems = error.problems
        except ValidationError as error:
            problems = error.messages
        else:
            note = (f"{result.items} curated items are ready to export." if result.items else
                    "Its job now answers, critiques and queues the rows for review.")
            messages.success(request, f"Imported {result.rows} rows as campaign "
                                      f"“Import {upload.name}”. {note}")
            return redirect("annotator:data_import", slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotator/data_import.html",
                  {"access": access, "project": access.project, "form": form,
                   "problems": problems, "kinds": IMPORT_KINDS}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """My personal API tokens; a new token's key is shown on this response only."""
    form = TokenForm(request.POST or None)
    new_key = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            new_key = token_create(user=request.user, name=form.cleaned_data["name"]).key
            form = TokenForm()
        else:
            status = 400
    return render(request, "annotator/tokens.html",
                  {"form": form, "new_key": new_key,
                   "tokens": ApiToken.objects.filter(user=request.user)}, status=status)


@require_POST
@login_required
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, user=request.user, pk=pk)
    token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("annotator:tokens")
