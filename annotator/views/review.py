"""Expert review pages: the keyboard-first queue, undo, progress and agreement, adjudication
and gold items.

Every decision is one POST. With htmx the response is the next item's fragment
("review.html#item"); without JavaScript the POST redirects to the queue, which claims the next
item, so the page works either way.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from alignment_core.dimensions import DIMENSIONS
from annotator.access import ProjectAccess, project_access
from annotator.models import (
    DECISIONS,
    UNDOABLE,
    Review,
    ReviewAction,
    ReviewItem,
    Role,
    Verdict,
)
from annotator.selectors.critic import calibration_chart_data, calibration_report, learning_curve
from annotator.selectors.dimensions import dimension_agreement
from annotator.selectors.review import (
    adjudicated_items,
    adjudication_decisions,
    adjudication_queue,
    project_agreement,
    review_item_context,
    review_item_for_display,
    review_progress,
)
from annotator.services.oversight import review_item_gold_set
from annotator.services.review import (
    clamp_seconds,
    review_adjudicate,
    review_claim_next,
    review_submit,
    review_undo,
)
from annotator.services.review_verdicts import REJECT_REASONS, VERDICT_FLIP


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a.value, a.label) for a in UNDOABLE])
    final_verdict = forms.ChoiceField(choices=[("", "—"), *Verdict.choices], required=False)
    corrected_response = forms.CharField(required=False, strip=False, max_length=20000)
    reason_code = forms.CharField(required=False, max_length=32)
    note = forms.CharField(required=False, max_length=2000)
    # The server's timestamp when the item was rendered, and the time the browser measured.
    opened_at = forms.FloatField(required=False)
    client_ms = forms.FloatField(required=False, min_value=0)

    def dimension_corrections(self) -> dict[str, int]:
        """The dimension scores the page sent (the critic's unless the expert changed one)."""
        return {name: self.cleaned_data[name] for name in DIMENSIONS
                if self.cleaned_data.get(name) is not None}

    def seconds_spent(self) -> float:
        client_ms = self.cleaned_data.get("client_ms")
        if client_ms:
            return clamp_seconds(client_ms / 1000.0)
        opened_at = self.cleaned_data.get("opened_at")
        if opened_at:
            return clamp_seconds(timezone.now().timestamp() - opened_at)
        return 0.0


# One optional 0-4 field per dimension, named as the dimension (the assisted view's selects).
for _name in DIMENSIONS:
    DecisionForm.base_fields[_name] = forms.IntegerField(required=False, min_value=0,
                                                         max_value=4)


class GoldForm(forms.Form):
    gold = forms.TypedChoiceField(choices=[("1", "gold"), ("0", "not gold")],
                                  coerce=lambda value: value == "1")


class AdjudicationForm(forms.Form):
    final_verdict = forms.ChoiceField(choices=Verdict.choices, required=False)
    final_response = forms.CharField(required=False, strip=False, max_length=20000)
    note = forms.CharField(required=False, max_length=2000)
    # "Take this decision": settle with one reviewer's verdict and response.
    from_review = forms.IntegerField(required=False)


def _errors_text(error: ValidationError | forms.Form) -> str:
    if isinstance(error, forms.Form):
        return "; ".join(f"{field}: {' '.join(msgs)}" if field != "__all__" else " ".join(msgs)
                         for field, msgs in error.errors.items())
    return " ".join(error.messages)


def _render_item(request: HtmxHttpRequest, access: ProjectAccess, *, item: ReviewItem | None,
                 error: str = "", status: int = 200) -> HttpResponse:
    context = {"access": access, "project": access.project, "error": error,
               "progress": review_progress(project=access.project, expert=request.user),
               "reasons": REJECT_REASONS, "verdicts": Verdict.choices, "item": None}
    if item is not None:
        context.update(review_item_context(item=item))
        if not item.served_as.blind:
            context["flipped_verdict"] = VERDICT_FLIP[Verdict(item.critique.verdict)].value
    template = "annotator/review.html#item" if request.htmx else "annotator/review.html"
    return render(request, template, context, status=status)


def _next_item(access: ProjectAccess, user) -> ReviewItem | None:
    # The service returns the item with its critique, response and attack already joined.
    return review_claim_next(project=access.project, expert=user)


@require_GET
@login_required
def review_queue(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.EXPERT)
    return _render_item(request, access, item=_next_item(access, request.user))


@require_POST
@login_required
def review_decide(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.EXPERT)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        item = review_item_for_display(project=access.project, pk=pk, expert=request.user)
        if item is None:
            raise Http404("No such item in this project.")
        return _render_item(request, access, error=_errors_text(form), status=400, item=item)
    data = form.cleaned_data
    try:
        # The service looks the item up inside the project (no query of our own for the scope).
        review_submit(item=ReviewItem(pk=pk), project=access.project, expert=request.user,
                      action=data["action"], final_verdict=data["final_verdict"] or None,
                      corrected_response=data["corrected_response"],
                      reason_code=data["reason_code"], note=data["note"],
                      seconds_spent=form.seconds_spent(),
                      # The selects go with every button of the form; a skip labels nothing.
                      dimensions=(form.dimension_corrections()
                                  if data["action"] != ReviewAction.SKIP else None))
    except ReviewItem.DoesNotExist:
        raise Http404("No such item in this project.") from None
    except ValidationError as error:
        # A field error (empty edit, missing reason) keeps the item on screen to fix it; an error
        # about the item itself (already decided, no longer pending) moves on to the next one.
        if hasattr(error, "error_dict"):
            current = review_item_for_display(project=access.project, pk=pk, expert=request.user)
        else:
            current = _next_item(access, request.user)
        return _render_item(request, access, item=current, error=_errors_text(error), status=400)
    return _next_or_queue(request, access)


def _next_or_queue(request: HtmxHttpRequest, access) -> HttpResponse:
    """After a decision or an undo: the next item (htmx), or back to the queue page."""
    if not request.htmx:
        return redirect("annotator:review_queue", slug=access.project.slug)
    return _render_item(request, access, item=_next_item(access, request.user))


@require_POST
@login_required
def review_undo_last(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.EXPERT)
    try:
        review_undo(project=access.project, expert=request.user)
    except ValidationError as error:
        return _render_item(request, access, item=_next_item(access, request.user),
                            error=_errors_text(error), status=400)
    return _next_or_queue(request, access)


@require_GET
@login_required
def review_stats(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.VIEWER)
    project = access.project
    calibration, curve = calibration_report(project=project), learning_curve(project=project)
    context = {"access": access, "project": project, "calibration": calibration,
               "curve": curve, "chart_data": calibration_chart_data(calibration=calibration,
                                                                     curve=curve)}
    if request.htmx:  # the calibration card's refresh link
        return render(request, "annotator/review_stats.html#calibration", context)
    context.update(agreement=project_agreement(project=project),
                   dimensions=dimension_agreement(project=project),
                   progress=(review_progress(project=project, expert=request.user)
                             if access.is_expert else None))
    return render(request, "annotator/review_stats.html", context)


@require_GET
@login_required
def adjudication_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    return render(request, "annotator/review_adjudication_list.html", {
        "access": access, "project": access.project,
        "items": adjudication_queue(project=access.project)[:200],
        "settled": adjudicated_items(project=access.project)[:200]})


@require_GET
@login_required
def adjudication_detail(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    item = get_object_or_404(ReviewItem.objects.select_related("critique__response__attack"),
                             project=access.project, pk=pk)
    return _render_adjudication(request, access, item)


def _render_adjudication(request, access, item, *, error: str = "", status: int = 200):
    context = {"access": access, "project": access.project, "error": error,
               "decisions": adjudication_decisions(item=item), "verdicts": Verdict.choices,
               **review_item_context(item=item)}
    return render(request, "annotator/review_adjudication.html", context, status=status)


@require_POST
@login_required
def adjudication_settle(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    item = get_object_or_404(ReviewItem.objects.select_related("critique__response__attack"),
                             project=access.project, pk=pk)
    form = AdjudicationForm(request.POST)
    if not form.is_valid():
        return _render_adjudication(request, access, item, error=_errors_text(form), status=400)
    data = form.cleaned_data
    verdict, response, dimensions = data["final_verdict"], data["final_response"], None
    if data["from_review"]:
        chosen = get_object_or_404(Review, pk=data["from_review"], item=item,
                                   action__in=DECISIONS)
        verdict, response = chosen.final_verdict, chosen.corrected_response
        dimensions = chosen.dimensions
    try:
        review_adjudicate(item=item, admin=request.user, final_verdict=verdict,
                          final_response=response, note=data["note"], dimensions=dimensions)
    except ValidationError as error:
        return _render_adjudication(request, access, item, error=_errors_text(error), status=400)
    return redirect("annotator:adjudication_list", slug=slug)


@require_POST
@login_required
def adjudication_gold(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Mark a settled item as gold (gold=1) or unmark it (gold=0); htmx gets the item's row."""
    access = project_access(request.user, slug, minimum=Role.ADMIN)
    item = get_object_or_404(ReviewItem.objects.select_related("critique__response__attack"),
                             project=access.project, pk=pk)
    form = GoldForm(request.POST)
    error = _errors_text(form) if not form.is_valid() else ""
    if not error:
        try:
            item = review_item_gold_set(item=item, admin=request.user,
                                        gold=form.cleaned_data["gold"])
        except ValidationError as failure:
            error = _errors_text(failure)
    if request.htmx:
        return render(request, "annotator/review_adjudication_list.html#settled-row",
                      {"access": access, "project": access.project, "row": item,
                       "error": error}, status=400 if error else 200)
    if error:
        messages.error(request, error)
    # The detail page's button comes back to the detail page; the list's to the list.
    if request.POST.get("next") == "detail":
        return redirect("annotator:adjudication_detail", slug=slug, pk=item.pk)
    return redirect("annotator:adjudication_list", slug=slug)
