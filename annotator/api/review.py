"""API: the expert review loop (next item, decide, undo) and read access to critiques and reviews.

The views call the same services as the review pages (annotator/services/review.py), so the
queue rules, the overlap and the undo semantics are identical for scripts and for the browser.
Experts only ever see their own reviews here (independent overlap review); admins see all.

An item served blind comes with `"blind": true` and no `critique` key (label it: action label
with a final_verdict); a critique an expert has open blind is not listed for them either. A gold
item served unannounced looks like any item waiting for reviews, here and in the answers about
it (its state, reviews done); only admins see the truth, in the review list.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alignment_core.dimensions import DIMENSIONS, check_scores
from annotator.access import project_access
from annotator.api.common import ERROR_RESPONSES, paginated
from annotator.api.dimensions import DimensionsOutput, ScoresOutput, scores_data
from annotator.models import (
    Critique,
    ItemState,
    Review,
    ReviewAction,
    ReviewAssignment,
    ReviewItem,
    Role,
)
from annotator.models.campaigns import Verdict
from annotator.models.reviews import AssignmentState
from annotator.selectors.review import highlight_segments
from annotator.services.review import review_claim_next, review_submit, review_undo
from annotator.services.review_verdicts import REJECT_REASONS


class SpanOutput(serializers.Serializer):
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    text = serializers.CharField()


def _valid_spans(text: str, spans) -> list[dict]:
    """The critic's spans as they apply to the text: clamped, merged, with the flagged text."""
    out, pos = [], 0
    for segment in highlight_segments(text, spans):
        if segment.flagged:
            out.append({"start": pos, "end": pos + len(segment.text), "text": segment.text})
        pos += len(segment.text)
    return out


# The output serializers below declare their fields (they are the OpenAPI schema) and write
# them out by hand in to_representation: DRF builds and binds a fresh copy of every declared
# field for each serializer it creates, which cost more CPU than the query behind the item on
# the review loop's hot path (next and decide, once per decision each). The values go through
# the same conversions as the declared fields; test_api_review checks that both give the same.
_DATETIME = serializers.DateTimeField()


class CritiqueOutput(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField(source="review_item.id", allow_null=True)
    item_state = serializers.ChoiceField(choices=ItemState.choices,
                                         source="review_item.shown_state")
    query = serializers.CharField(source="response.attack.text")
    response = serializers.CharField(source="response.text")
    critic_name = serializers.CharField()
    critic_version = serializers.CharField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    category = serializers.CharField()
    severity = serializers.IntegerField()
    confidence = serializers.FloatField()
    spans = serializers.SerializerMethodField()
    explanation = serializers.CharField()
    suggested_revision = serializers.CharField()
    approved_answer = serializers.CharField(
        help_text="What approving this critique curates: the suggested revision where the critic "
                  "replaces the answer (unsafe, over-refusal, or no answer at all to a harmful "
                  "request), else the learner's original response.")
    dimensions = DimensionsOutput(help_text="The critic's harmlessness, helpfulness and honesty.")
    created_at = serializers.DateTimeField()

    @extend_schema_field(SpanOutput(many=True))
    def get_spans(self, critique: Critique) -> list[dict]:
        return _valid_spans(critique.response.text, critique.spans)

    def to_representation(self, critique: Critique) -> dict:
        return _critique_data(critique)


def _critique_data(critique: Critique) -> dict:
    item = getattr(critique, "review_item", None)  # a critique not queued (yet) has none
    response = critique.response
    return {
        "id": int(critique.id),
        "item_id": None if item is None else int(item.id),
        # As the item is served (a gold probe's looks pending), when it came with one.
        "item_state": None if item is None else str(item.shown_state),
        "query": str(response.attack.text),
        "response": str(response.text),
        "critic_name": str(critique.critic_name),
        "critic_version": str(critique.critic_version),
        "verdict": str(critique.verdict),
        "category": str(critique.category),
        "severity": int(critique.severity),
        "confidence": float(critique.confidence),
        "spans": _valid_spans(response.text, critique.spans),
        "explanation": str(critique.explanation),
        "suggested_revision": str(critique.suggested_revision),
        "approved_answer": str(critique.approved_answer),
        "dimensions": {**scores_data(critique.scores),
                       "reasons": {k: str(v) for k, v in critique.scores["reasons"].items()}},
        "created_at": _DATETIME.to_representation(critique.created_at),
    }


class ReviewItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=ItemState.choices, source="shown_state")
    priority = serializers.FloatField(
        required=False, help_text="Absent when `blind` is true: it is computed from the "
        "critic's confidence and severity.")
    reviews_required = serializers.IntegerField()
    reviews_done = serializers.IntegerField(source="shown_reviews_done")
    blind = serializers.BooleanField(
        source="served_as.blind",
        help_text="Served without the critic: no `critique` key; decide with action label.")
    query = serializers.CharField(source="critique.response.attack.text")
    response = serializers.CharField(source="critique.response.text")
    critique = CritiqueOutput(required=False, help_text="Absent when `blind` is true.")

    def to_representation(self, item: ReviewItem) -> dict:
        served_as = item.served_as
        response = item.critique.response
        # In the declared fields' order; a blind item leaves out what comes from the critic.
        data = {"id": int(item.id), "state": str(item.shown_state)}
        if not served_as.blind:
            data["priority"] = float(item.priority)
        data.update({
            "reviews_required": int(item.reviews_required),
            "reviews_done": int(item.shown_reviews_done),
            "blind": bool(served_as.blind),
            "query": str(response.attack.text),
            "response": str(response.text),
        })
        if not served_as.blind:
            data["critique"] = _critique_data(item.critique)
        return data


class ReviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    expert = serializers.CharField(source="expert.username")
    action = serializers.ChoiceField(choices=ReviewAction.choices)
    final_verdict = serializers.CharField()
    final_severity = serializers.IntegerField(allow_null=True)
    corrected_response = serializers.CharField()
    reason_code = serializers.CharField()
    note = serializers.CharField()
    seconds_spent = serializers.FloatField()
    undoes_id = serializers.IntegerField(allow_null=True)
    undone = serializers.SerializerMethodField()
    blind = serializers.BooleanField(help_text="Decided without the critic shown.")
    dimensions = ScoresOutput(allow_null=True, help_text="The critic's scores with the expert's "
                              "corrections (null for a skip or an undo).")
    created_at = serializers.DateTimeField()
    item_state = serializers.SerializerMethodField(help_text="The item's state now.")

    def get_item_state(self, review: Review) -> str:
        # A gold probe's item is finished; its expert sees what a review of an item waiting for
        # reviews leaves, as they would on any item (admins listing reviews see the truth).
        if review.gold_probe and not self.context.get("reveal_gold"):
            return str(ItemState.DONE if review.item.reviews_required == 1 else ItemState.PENDING)
        return str(review.item.state)

    def get_undone(self, review: Review) -> bool:
        # Lists select_related("undone_by"), so this costs no query per row there; a review the
        # request has just recorded (decide, undo) cannot have been undone yet.
        if self.context.get("just_recorded"):
            return False
        return hasattr(review, "undone_by")

    def to_representation(self, review: Review) -> dict:
        return {
            "id": int(review.id),
            "item_id": int(review.item_id),
            "expert": str(review.expert.username),
            "action": str(review.action),
            "final_verdict": str(review.final_verdict),
            "final_severity": None if review.final_severity is None else int(review.final_severity),
            "corrected_response": str(review.corrected_response),
            "reason_code": str(review.reason_code),
            "note": str(review.note),
            "seconds_spent": float(review.seconds_spent),
            "undoes_id": None if review.undoes_id is None else int(review.undoes_id),
            "undone": self.get_undone(review),
            "blind": bool(review.blind),
            "dimensions": scores_data(review.dimensions),
            "created_at": _DATETIME.to_representation(review.created_at),
            "item_state": self.get_item_state(review),
        }


class DecisionInput(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=[ReviewAction.APPROVE, ReviewAction.EDIT, ReviewAction.REJECT, ReviewAction.LABEL,
                 ReviewAction.SKIP],
        help_text="approve, edit or reject the critique of an assisted item; label (with a "
        "final_verdict, and corrected_response to rewrite the answer) an item served blind.")
    final_verdict = serializers.ChoiceField(choices=Verdict.choices, required=False,
                                            allow_blank=True, default="")
    corrected_response = serializers.CharField(required=False, allow_blank=True, default="",
                                               trim_whitespace=False, max_length=20000)
    reason_code = serializers.ChoiceField(
        choices=[*(code for code, _ in REJECT_REASONS), "other"], required=False,
        allow_blank=True, default="",
        help_text="Why the critic is wrong (action reject): "
        + "; ".join(f"{code} = {label}" for code, label in REJECT_REASONS) + "; other.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    seconds_spent = serializers.FloatField(required=False, default=0.0, min_value=0,
                                           help_text="Clamped to 0-900 s.")
    dimensions = serializers.DictField(
        child=serializers.JSONField(), required=False, default=dict,
        help_text="Corrections of the critic's scores, any of " + ", ".join(DIMENSIONS)
        + " (0-4); the others keep the critic's.")

    def validate_dimensions(self, value: dict) -> dict:
        try:
            return check_scores(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


def _bad_choice(field: str, choices) -> serializers.ValidationError:
    return serializers.ValidationError({field: [f"Use one of {', '.join(choices)}."]})


def _scoped_item(project, pk: int) -> ReviewItem:
    # Only the scope check (the service re-reads the item, with what it needs, inside its
    # transaction), as on the review page.
    try:
        return ReviewItem.objects.only("id").get(project=project, pk=pk)
    except ReviewItem.DoesNotExist:
        raise Http404("No such item in this project.") from None


class ReviewNextView(APIView):
    @extend_schema(
        operation_id="review_next",
        responses={200: ReviewItemOutput,
                   204: OpenApiResponse(description="Nothing left for me to review."),
                   **ERROR_RESPONSES},
        summary="Claim the next item for me (my open item first); idempotent until I decide.")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.EXPERT)
        item = review_claim_next(project=access.project, expert=request.user)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewItemOutput(item).data)


class ReviewDecideView(APIView):
    @extend_schema(
        operation_id="review_decide", request=DecisionInput,
        responses={201: ReviewOutput, **ERROR_RESPONSES},
        summary="Approve, edit, reject (the critic is wrong), label (blind) or skip one item.")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = project_access(request.user, slug, minimum=Role.EXPERT)
        data = DecisionInput(data=request.data)
        if not data.is_valid():
            _scoped_item(access.project, pk)  # an item of another project is 404, not 400
            raise serializers.ValidationError(data.errors)
        values = data.validated_data
        try:
            # The service looks the item up inside the project: no scope query of our own.
            review = review_submit(
                item=ReviewItem(pk=pk), project=access.project, expert=request.user,
                action=values["action"], final_verdict=values["final_verdict"] or None,
                corrected_response=values["corrected_response"],
                reason_code=values["reason_code"], note=values["note"],
                seconds_spent=values["seconds_spent"], dimensions=values["dimensions"])
        except ReviewItem.DoesNotExist:
            raise Http404("No such item in this project.") from None
        return Response(ReviewOutput(review, context={"just_recorded": True}).data,
                        status=status.HTTP_201_CREATED)


class ReviewUndoView(APIView):
    @extend_schema(
        operation_id="review_undo", request=None,
        responses={201: ReviewOutput, **ERROR_RESPONSES},
        summary="Undo my last decision in the project (recorded as a new review).")
    def post(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.EXPERT)
        undo = review_undo(project=access.project, expert=request.user)
        return Response(ReviewOutput(undo, context={"just_recorded": True}).data,
                        status=status.HTTP_201_CREATED)


def _visible_critiques(request: Request, project) -> QuerySet[Critique]:
    """The project's critiques, less those of items this user has open blind or as a gold probe
    (looking one up would show what the serving hides)."""
    hidden = (ReviewAssignment.objects.filter(expert=request.user, state=AssignmentState.OPEN)
              .filter(Q(blind=True) | Q(gold_probe=True)).values("item_id"))
    return (Critique.objects.filter(review_item__project=project)
            .exclude(review_item__in=hidden).select_related("review_item", "response__attack"))


class CritiqueListView(APIView):
    @extend_schema(
        operation_id="critiques_list",
        parameters=[OpenApiParameter("state", str, enum=ItemState.values),
                    OpenApiParameter("verdict", str, enum=Verdict.values)],
        responses={200: CritiqueOutput(many=True), **ERROR_RESPONSES},
        summary="The project's critiques with their review state, newest first (cursor pages).")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.VIEWER)
        critiques = _visible_critiques(request, access.project)
        state, verdict = request.query_params.get("state"), request.query_params.get("verdict")
        if state:
            if state not in ItemState.values:
                raise _bad_choice("state", ItemState.values)
            critiques = critiques.filter(review_item__state=state)
        if verdict:
            if verdict not in Verdict.values:
                raise _bad_choice("verdict", Verdict.values)
            critiques = critiques.filter(verdict=verdict)
        return paginated(self, critiques, CritiqueOutput)


class CritiqueDetailView(APIView):
    @extend_schema(operation_id="critiques_retrieve",
                   responses={200: CritiqueOutput, **ERROR_RESPONSES},
                   summary="One critique of the project.")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = project_access(request.user, slug, minimum=Role.VIEWER)
        critique = get_object_or_404(_visible_critiques(request, access.project), pk=pk)
        return Response(CritiqueOutput(critique).data)


class ReviewListView(APIView):
    @extend_schema(
        operation_id="reviews_list",
        parameters=[OpenApiParameter("item", int), OpenApiParameter("action", str,
                                                                     enum=ReviewAction.values)],
        responses={200: ReviewOutput(many=True), **ERROR_RESPONSES},
        summary="Reviews in the project, newest first: all of them for admins, my own otherwise.")
    def get(self, request: Request, slug: str) -> Response:
        access = project_access(request.user, slug, minimum=Role.VIEWER)
        reviews = Review.objects.filter(item__project=access.project).select_related(
            "expert", "item", "undone_by")
        if not access.is_admin:
            reviews = reviews.filter(expert=request.user)
        item, action = request.query_params.get("item"), request.query_params.get("action")
        if item:
            if not item.isdigit():
                raise serializers.ValidationError({"item": ["Use an item id."]})
            reviews = reviews.filter(item_id=int(item))
        if action:
            if action not in ReviewAction.values:
                raise _bad_choice("action", ReviewAction.values)
            reviews = reviews.filter(action=action)
        return paginated(self, reviews, ReviewOutput, context={"reveal_gold": access.is_admin})


urlpatterns = [
    path("projects/<slug:slug>/review/next/", ReviewNextView.as_view(), name="review_next"),
    path("projects/<slug:slug>/review/items/<int:pk>/decide/", ReviewDecideView.as_view(),
         name="review_decide"),
    path("projects/<slug:slug>/review/undo/", ReviewUndoView.as_view(), name="review_undo"),
    path("projects/<slug:slug>/critiques/", CritiqueListView.as_view(), name="critique_list"),
    path("projects/<slug:slug>/critiques/<int:pk>/", CritiqueDetailView.as_view(),
         name="critique_detail"),
    path("projects/<slug:slug>/reviews/", ReviewListView.as_view(), name="review_list"),
]
