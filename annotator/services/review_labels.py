"""An item's final label, derived from its live decisions (never from counters).

The review services (annotator.services.review) call `item_recompute` after every decision and
undo; the final label is the verdict, the answer, the severity and the dimensions of the
deciding decision.
"""

from __future__ import annotations

from django.utils import timezone

from annotator.models import ItemState, Review
from annotator.models.reviews import ReviewAction, ReviewItem


def live_decisions(item: ReviewItem) -> list[Review]:
    """The item's decisions that count: approve/edit/reject/label reviews nobody has undone
    (gold probes never count)."""
    return list(Review.objects.filter(item=item).counting().order_by("created_at", "id"))


def expert_wrote(decision: Review, item: ReviewItem) -> bool:
    """Whether the decision's response is text the expert wrote: an edit, or a blind label
    whose answer they rewrote."""
    if decision.action == ReviewAction.EDIT:
        return True
    return (decision.action == ReviewAction.LABEL and bool(decision.corrected_response.strip())
            and decision.corrected_response != item.critique.response.text)


def item_recompute(item: ReviewItem, new: Review | None = None) -> None:
    """Derive the item's state and final label from its live decisions (never from counters).

    Called after every decision and undo, inside the caller's transaction, with the item locked.
    `new` is the decision just recorded: when the item had no live decision before it (its
    reviews_done, kept by this function under the same lock, is 0), it is the only one, and the
    query for them is skipped (the usual case with one review per item).
    """
    if item.adjudicated:
        return
    decisions = [new] if new is not None and item.reviews_done == 0 else live_decisions(item)
    item.reviews_done = len(decisions)
    item.final_verdict, item.final_response = "", ""
    item.final_severity, item.curated_at, item.final_dimensions = None, None, None
    if len(decisions) < item.reviews_required:
        item.state = ItemState.PENDING
    elif len({d.final_verdict for d in decisions}) == 1:
        # Agreement. The final response prefers an expert-written edit over an approved revision
        # because a human wrote it for this exact case; otherwise the first decision's.
        chosen = next((d for d in decisions if expert_wrote(d, item)), decisions[0])
        item.state = ItemState.DONE
        item.final_verdict = chosen.final_verdict
        item.final_response = chosen.corrected_response
        item.final_severity = chosen.final_severity
        item.final_dimensions = chosen.dimensions or None
        item.curated_at = timezone.now()
    else:
        item.state = ItemState.DISAGREEMENT
    item.save(update_fields=["state", "reviews_done", "final_verdict", "final_response",
                             "final_severity", "final_dimensions", "curated_at"])
