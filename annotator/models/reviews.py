"""The review queue and the experts' immutable decisions."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone


class ItemState(models.TextChoices):
    PENDING = "pending", "Waiting for reviews"
    DISAGREEMENT = "disagreement", "Needs adjudication"
    DONE = "done", "Curated"
    AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"


# The states of an item whose label is final (by experts, or auto-accepted from the critic).
CURATED_STATES = (ItemState.DONE, ItemState.AUTO_ACCEPTED)


@dataclass(frozen=True)
class ServedAs:
    """How an item is served to one expert, fixed when it is served (ReviewAssignment).

    blind: without the critic's verdict, explanation, spans and revision; the expert labels it.
    gold_probe: a gold item slipped into the queue unannounced; the answer is scored against the
    gold label and never changes the item. Nothing the expert sees says so.
    """

    blind: bool = False
    gold_probe: bool = False


ASSISTED = ServedAs()


class ReviewItem(models.Model):
    """A critique waiting for (or done with) expert review.

    Curated items (DONE, AUTO_ACCEPTED) carry the final label in `final_verdict` and
    `final_response`: the approved or corrected revision that becomes the "chosen" answer.
    """

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="review_items")
    critique = models.OneToOneField(
        "annotator.Critique", on_delete=models.CASCADE, related_name="review_item"
    )
    # Higher first: critic uncertainty and severity (see services that create items).
    priority = models.FloatField(default=0.0)
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.PENDING)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    reviews_done = models.PositiveSmallIntegerField(default=0)
    # A uniform random sample of all items (see review_items_create); its expert verdicts set
    # the auto-accept threshold.
    is_audit = models.BooleanField(default=False)
    final_verdict = models.CharField(max_length=16, blank=True)
    final_response = models.TextField(blank=True)
    final_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    # {dimension: 0-4} of the learner's answer as curated: the deciding decision's (the critic's
    # scores with the expert's corrections), the critic's when auto-accepted; None until curated.
    final_dimensions = models.JSONField(null=True, blank=True)
    adjudicated = models.BooleanField(default=False)
    curated_at = models.DateTimeField(null=True, blank=True)
    # Gold: an adjudicated item whose label (final_verdict) an admin trusts enough to score
    # experts against; served to experts unannounced (Project.gold_share).
    is_gold = models.BooleanField(default=False)
    gold_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    gold_marked_at = models.DateTimeField(null=True, blank=True)
    # Written by the reliability job (annotator.services.oversight): the Dawid-Skene posterior
    # over the four verdicts, and the probability that final_verdict is right (None without a
    # final verdict or without expert verdicts to estimate from).
    label_confidence = models.FloatField(null=True, blank=True)
    label_posterior = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The queue query: a project's pending items, best first.
            models.Index(fields=["project", "state", "-priority", "id"], name="reviewitem_queue"),
            # The gold items of a project, looked up when a gold slot comes up in a queue.
            models.Index(fields=["project"], condition=models.Q(is_gold=True),
                         name="reviewitem_gold"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reviews_required__gte=1), name="reviewitem_required_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(is_gold=False)
                | (models.Q(adjudicated=True) & ~models.Q(final_verdict="")),
                name="reviewitem_gold_is_adjudicated",
            ),
            models.CheckConstraint(
                condition=models.Q(label_confidence__isnull=True)
                | (models.Q(label_confidence__gte=0) & models.Q(label_confidence__lte=1)),
                name="reviewitem_label_confidence_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"Item {self.pk} ({self.state})"

    @property
    def is_curated(self) -> bool:
        return self.state in CURATED_STATES

    # How the item is served to the expert it was claimed for (set by the review services on
    # the instance they hand out; assisted when it was not claimed for anyone).
    @property
    def served_as(self) -> ServedAs:
        return self.__dict__.get("_served_as", ASSISTED)

    @served_as.setter
    def served_as(self, value: ServedAs) -> None:
        self.__dict__["_served_as"] = value

    @property
    def shown_state(self) -> str:
        """The state the expert it is served to sees: a gold probe looks like any item waiting
        for reviews, not like the finished item it is."""
        return ItemState.PENDING if self.served_as.gold_probe else self.state

    @property
    def shown_reviews_done(self) -> int:
        return 0 if self.served_as.gold_probe else self.reviews_done


class AssignmentState(models.TextChoices):
    OPEN = "open", "Open"
    DECIDED = "decided", "Decided"
    SKIPPED = "skipped", "Skipped"


class ReviewAssignment(models.Model):
    """One expert's working state for one item (mutable, unlike Review).

    OPEN: the expert has the item on screen; it counts against the overlap until decided or until
    it expires (abandoned items come back). DECIDED / SKIPPED: the item never comes back to this
    expert's queue, unless they undo the decision, which reopens the assignment. Keeping this
    state here lets the queue query avoid scanning the immutable Review history.
    """

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="assignments")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(
        max_length=8, choices=AssignmentState.choices, default=AssignmentState.OPEN
    )
    opened_at = models.DateTimeField(default=timezone.now)
    # The mode the item was served in, fixed when it is served: a change of the project's
    # shares never switches an item an expert has open, and an undo reopens it the same way.
    blind = models.BooleanField(default=False)
    gold_probe = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "expert"], name="assignment_unique_expert"),
            models.CheckConstraint(
                condition=models.Q(state__in=[s.value for s in AssignmentState]),
                name="assignment_state_valid",
            ),
        ]
        indexes = [
            # "What does this expert have open?" on every queue request.
            models.Index(fields=["expert", "state", "-opened_at"], name="assignment_open"),
        ]

    def __str__(self) -> str:
        return f"{self.expert} {self.state} item {self.item_id}"

    @property
    def served_as(self) -> ServedAs:
        return ServedAs(blind=self.blind, gold_probe=self.gold_probe)


class ReviewAction(models.TextChoices):
    APPROVE = "approve", "Approve"
    EDIT = "edit", "Edit"
    REJECT = "reject", "Critic is wrong"
    LABEL = "label", "Label (blind)"  # a verdict from scratch, on an item served blind
    SKIP = "skip", "Skip"
    UNDO = "undo", "Undo"
    ADJUDICATE = "adjudicate", "Adjudicate"


# Actions that give the item a label and count towards `reviews_required` (skips and undos say
# nothing about the verdict). Approve, edit and reject answer the critic; label is the verdict of
# an expert who never saw it (a blind review).
DECISIONS = (ReviewAction.APPROVE, ReviewAction.EDIT, ReviewAction.REJECT, ReviewAction.LABEL)
# Actions an expert can undo (their own; an adjudication is settled by an admin and final).
UNDOABLE = (*DECISIONS, ReviewAction.SKIP)


class ReviewQuerySet(models.QuerySet):
    def counting(self) -> ReviewQuerySet:
        """The decisions that count for their items: not undone and not gold probes (a gold
        probe's answer is scored against the gold label and never touches the item)."""
        return self.filter(action__in=DECISIONS, undone_by__isnull=True, gold_probe=False)


class Review(models.Model):
    """One expert decision. Immutable: an undo is a new Review pointing at the one it undoes."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="reviews")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    action = models.CharField(max_length=16, choices=ReviewAction.choices)
    final_verdict = models.CharField(max_length=16, blank=True)
    final_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    corrected_response = models.TextField(blank=True)
    # {dimension: 0-4} this decision gives the learner's answer: the critic's scores (re-read
    # for the expert's verdict when it differs) with the expert's corrections; None on a skip.
    dimensions = models.JSONField(null=True, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    note = models.TextField(blank=True)
    seconds_spent = models.FloatField(default=0.0)
    # Copied from the assignment the decision closed (ReviewAssignment): reviewed without the
    # critic, and answered as an unannounced gold item.
    blind = models.BooleanField(default=False)
    gold_probe = models.BooleanField(default=False)
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["expert", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(seconds_spent__gte=0), name="review_seconds_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert} {self.action} item {self.item_id}"

    def save(self, *args, **kwargs) -> None:
        # Reviews are an audit trail: once written, never changed (undo writes a new row).
        if self.pk is not None:
            raise ValueError("Reviews are immutable; record a new Review instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Reviews are immutable and cannot be deleted.")
