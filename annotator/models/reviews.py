"""The review queue and the experts' immutable decisions."""

from __future__ import annotations

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
    is_audit = models.BooleanField(default=False)  # sampled from auto-acceptable items
    final_verdict = models.CharField(max_length=16, blank=True)
    final_response = models.TextField(blank=True)
    final_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    adjudicated = models.BooleanField(default=False)
    curated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # The queue query: a project's pending items, best first.
            models.Index(fields=["project", "state", "-priority", "id"], name="reviewitem_queue"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reviews_required__gte=1), name="reviewitem_required_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"Item {self.pk} ({self.state})"

    @property
    def is_curated(self) -> bool:
        return self.state in CURATED_STATES


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


class ReviewAction(models.TextChoices):
    APPROVE = "approve", "Approve"
    EDIT = "edit", "Edit"
    REJECT = "reject", "Critic is wrong"
    SKIP = "skip", "Skip"
    UNDO = "undo", "Undo"
    ADJUDICATE = "adjudicate", "Adjudicate"


# Actions that give the item a label and count towards `reviews_required` (skips and undos say
# nothing about the verdict).
DECISIONS = (ReviewAction.APPROVE, ReviewAction.EDIT, ReviewAction.REJECT)
# Actions an expert can undo (their own; an adjudication is settled by an admin and final).
UNDOABLE = (*DECISIONS, ReviewAction.SKIP)


class Review(models.Model):
    """One expert decision. Immutable: an undo is a new Review pointing at the one it undoes."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="reviews")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    action = models.CharField(max_length=16, choices=ReviewAction.choices)
    final_verdict = models.CharField(max_length=16, blank=True)
    final_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    corrected_response = models.TextField(blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    note = models.TextField(blank=True)
    seconds_spent = models.FloatField(default=0.0)
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

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
