"""Writes of the expert review loop: claim the next item, decide, undo, adjudicate.

Queue rules (one place, shared by the HTML pages and the API):

- An item is handed to an expert only while it is PENDING, the expert has no decided or skipped
  assignment for it, and its completed reviews plus the other experts' open (unexpired)
  assignments leave room under `reviews_required`. So with overlap > 1 several experts see the
  same item independently, nobody gets an item twice, and an item someone has open is not
  handed to more experts than the overlap allows.
- An expert first gets back the item they already have open (reloading the page is harmless).
- Open assignments expire after ASSIGNMENT_TTL, so an abandoned item comes back to the queue.
- A skip is recorded (as a Review with action skip, for the audit trail and the speed figures),
  gives no label, and the item is never offered to that expert again unless they undo the skip;
  other experts still get it.
- An undo is a new Review pointing at the one it undoes (reviews are immutable); the item goes
  back to the top of that expert's queue and its state and counters are recomputed from the
  live decisions.
- An item is served assisted or blind, or a gold item takes the queue head's place, fixed on the
  assignment (annotator.services.review_serving). A blind item is labelled (action label); a
  gold probe's answer is recorded and scored and never touches the gold item.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from annotator.models import (
    ASSISTED,
    REVISED_VERDICTS,
    UNDOABLE,
    ItemState,
    Project,
    Review,
    ServedAs,
)
from annotator.models.campaigns import Verdict
from annotator.models.reviews import AssignmentState, ReviewAction, ReviewAssignment, ReviewItem
from annotator.services.critic_learning import critic_learning_note
from annotator.services.review_labels import item_recompute
from annotator.services.review_serving import serving_plan
from annotator.services.review_verdicts import (
    check_action_fits,
    clean_dimensions,
    decision_dimensions,
    decision_label,
    severity_for,
)

# An open item that was not decided within this time goes back to the queue.
ASSIGNMENT_TTL = timedelta(minutes=30)
# Time spent per item is clamped to this range: a tab left open over lunch is not a 2-hour review.
MAX_SECONDS_PER_ITEM = 900.0


def _locked(queryset):
    """select_for_update where the database has row locks (PostgreSQL).

    SQLite has none, but its write transactions are IMMEDIATE (see settings), so a transaction
    that writes is serialised against every other writer anyway.
    """
    if connection.features.has_select_for_update:
        return queryset.select_for_update(of=("self",))
    return queryset


def clamp_seconds(value: float | None) -> float:
    if value is None:
        return 0.0
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(value):
        return 0.0
    return max(0.0, min(MAX_SECONDS_PER_ITEM, value))


def seconds_since(opened_at: datetime | None, *, now: datetime | None = None) -> float:
    if opened_at is None:
        return 0.0
    return clamp_seconds(((now or timezone.now()) - opened_at).total_seconds())


# -- queue --------------------------------------------------------------------------------------


def _next_candidate(*, project: Project, expert, now: datetime, exclude: list[int],
                    lock: bool = False) -> int | None:
    """The id of the best PENDING item this expert may get, or None.

    The rules: the expert has no decided/skipped assignment for it, and its completed reviews
    plus the other experts' open, unexpired assignments leave room under reviews_required.
    SQLite (and PostgreSQL) walk the reviewitem_queue index (project, state, -priority, id) and
    stop at the first row that passes the two correlated look-ups on the assignment table.
    Written as SQL because this runs on every decision and building the equivalent ORM query
    (Exists + annotated Subquery) cost more CPU than executing it.

    `lock` (PostgreSQL) also locks the row, skipping rows other claims have locked: experts
    claiming at the same moment take different items at once, instead of all waiting for the
    same best item and finding it taken (50 experts queued up behind that one lock).
    """
    item_table = ReviewItem._meta.db_table
    assignment_table = ReviewAssignment._meta.db_table
    ops = connection.ops
    not_in = f"AND i.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    sql = f"""
        SELECT i.id FROM {item_table} i
        WHERE i.project_id = %s AND i.state = %s {not_in}
          AND NOT EXISTS (
            SELECT 1 FROM {assignment_table} mine
            WHERE mine.item_id = i.id AND mine.expert_id = %s AND mine.state IN (%s, %s))
          AND (SELECT COUNT(*) FROM {assignment_table} other
               WHERE other.item_id = i.id AND other.state = %s AND other.opened_at >= %s
                 AND other.expert_id <> %s) < i.reviews_required - i.reviews_done
        ORDER BY i.priority DESC, i.id
        LIMIT 1 {"FOR UPDATE OF i SKIP LOCKED" if lock else ""}
    """
    params = [project.pk, ItemState.PENDING.value, *exclude, expert.pk,
              AssignmentState.DECIDED.value, AssignmentState.SKIPPED.value,
              AssignmentState.OPEN.value, ops.adapt_datetimefield_value(now - ASSIGNMENT_TTL),
              expert.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _current_open(*, project: Project, expert,
                  now: datetime) -> tuple[int, ServedAs] | None:
    """The item this expert has open (not expired), newest first, and how it was served; or None.
    Its item is PENDING, or a gold item served as a probe (gold items are finished items).

    SQLite walks the assignment_open index (expert, state, -opened_at). SQL for the same reason
    as _next_candidate: the ORM query joining the item's critique, response and attack cost
    more CPU to build than the rest of a claim.
    """
    item_table = ReviewItem._meta.db_table
    assignment_table = ReviewAssignment._meta.db_table
    sql = f"""
        SELECT a.item_id, a.blind, a.gold_probe FROM {assignment_table} a
        JOIN {item_table} i ON i.id = a.item_id
        WHERE a.expert_id = %s AND a.state = %s AND a.opened_at >= %s
          AND i.project_id = %s AND (i.state = %s OR a.gold_probe)
        ORDER BY a.opened_at DESC
        LIMIT 1
    """
    params = [expert.pk, AssignmentState.OPEN.value,
              connection.ops.adapt_datetimefield_value(now - ASSIGNMENT_TTL), project.pk,
              ItemState.PENDING.value]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return (row[0], ServedAs(blind=bool(row[1]), gold_probe=bool(row[2]))) if row else None


def review_claim_next(*, project: Project, expert) -> ReviewItem | None:
    """The item this expert should review now, with an open assignment for it; None when done.
    The item's `served_as` says how to show it (blind, gold probe).

    Safe under concurrency: the claim is one transaction; on PostgreSQL the candidate row is
    locked and the overlap re-checked after the lock, on SQLite the write transaction is
    serialised. The item's texts are read after the commit: on SQLite the claim holds the whole
    database's write lock, so it does only what has to be atomic.
    """
    now = timezone.now()
    with transaction.atomic():
        # 1. The item the expert already has open (and not expired) comes back first, served
        # as it was.
        claimed = _current_open(project=project, expert=expert, now=now)
        if claimed is None:
            # 2. The best candidate, or a gold item in its place; blind or not.
            claimed = serving_plan(project=project, expert=expert,
                                   head=_claim_candidate(project=project, expert=expert, now=now))
            if claimed is not None:
                _open_assignment(item_id=claimed[0], expert=expert, now=now,
                                 served_as=claimed[1])
    if claimed is None:
        return None
    item = _for_display().get(pk=claimed[0])
    item.served_as = claimed[1]
    return item


def _claim_candidate(*, project: Project, expert, now: datetime) -> int | None:
    """The best candidate with room under the overlap (the queue head); its id, or None.

    Runs inside the claim's transaction. On PostgreSQL the candidate comes locked, but another
    expert may have claimed it between the query's snapshot and the lock, so it is re-checked.
    """
    locking = connection.features.has_select_for_update_skip_locked
    skipped: list[int] = []
    for _ in range(5):
        pk = _next_candidate(project=project, expert=expert, now=now, exclude=skipped,
                             lock=locking)
        if pk is None:
            return None
        if locking and not _has_room(ReviewItem.objects.get(pk=pk), expert, now):
            skipped.append(pk)
            continue
        return pk
    return None


def _for_display():
    # The item view needs the critique, the response and the attack: fetch them in one query.
    return ReviewItem.objects.select_related("critique__response__attack")


def _open_assignment(*, item_id: int, expert, now: datetime,
                     served_as: ServedAs | None = None) -> None:
    """Open (or re-open an expired or undone) assignment. A new serving sets its mode; an undo
    (`served_as` None) reopens the item in the mode it was served in."""
    mode = served_as or ASSISTED
    # One upsert (INSERT ... ON CONFLICT DO UPDATE) instead of update_or_create's
    # SELECT + savepoint + INSERT: this runs on every item an expert opens.
    ReviewAssignment.objects.bulk_create(
        [ReviewAssignment(item_id=item_id, expert=expert, state=AssignmentState.OPEN,
                          opened_at=now, blind=mode.blind, gold_probe=mode.gold_probe)],
        update_conflicts=True, unique_fields=["item", "expert"],
        update_fields=["state", "opened_at"]
        + (["blind", "gold_probe"] if served_as is not None else []),
    )


def _check(review: Review) -> None:
    """Field validation for a new Review.

    The related objects are already loaded (no existence queries needed) and the database's
    check constraints guard the rest, so both are left out of full_clean to keep a decision
    at a handful of queries.
    """
    review.full_clean(exclude=["item", "expert", "undoes"], validate_constraints=False)


def _has_room(item: ReviewItem, expert, now: datetime) -> bool:
    if item.state != ItemState.PENDING:
        return False
    others = (ReviewAssignment.objects.filter(item=item, state=AssignmentState.OPEN,
                                              opened_at__gte=now - ASSIGNMENT_TTL)
              .exclude(expert=expert).count())
    return others + item.reviews_done < item.reviews_required


# -- decisions ----------------------------------------------------------------------------------


def review_submit(*, item: ReviewItem, expert, action: str, final_verdict: str | None = None,
                  corrected_response: str = "", reason_code: str = "", note: str = "",
                  seconds_spent: float = 0.0, project: Project | None = None,
                  dimensions: dict | None = None) -> Review:
    """Record one expert decision (approve, edit, reject, label or skip) and update the item,
    except on a gold probe, whose answer is only recorded.

    Raises ValidationError for bad input, a finished item, an action that does not fit how the
    item was served, or a second live decision by the same expert on the same item. With
    `project` (the request's, already read by its access check), the item is looked up inside
    that project only, so a view can pass `ReviewItem(pk=pk)` and turn ReviewItem.DoesNotExist
    into a 404 without a query of its own; a decision also counts towards the critic's next
    automatic retrain (services/critic_learning.py). `dimensions` are the expert's corrections
    of the critic's harmlessness / helpfulness / honesty ({name: 0-4}, any subset).
    """
    corrections = clean_dimensions(dimensions)
    if action not in UNDOABLE:
        raise ValidationError({"action": f"Unknown action {action!r}."})
    if final_verdict and final_verdict not in Verdict.values:
        raise ValidationError({"final_verdict": f"Unknown verdict {final_verdict!r}."})
    scope = {"project": project} if project is not None else {}
    with transaction.atomic():
        # The attack comes in the same query: the dimensions are read from both texts.
        item = _locked(ReviewItem.objects.select_related("critique__response__attack")
                       .filter(pk=item.pk, **scope)).get()
        state = AssignmentState.SKIPPED if action == ReviewAction.SKIP else AssignmentState.DECIDED
        served_as, closed = _close_assignment(item=item, expert=expert, state=state)
        check_action_fits(action=action, blind=served_as.blind)
        if action == ReviewAction.SKIP:
            if corrections:
                raise ValidationError({"dimensions": "A skip gives no label: leave the "
                                                     "dimensions out."})
            verdict, response, severity, scores = "", "", None, None
        else:
            verdict, response, severity = decision_label(
                critique=item.critique, action=action, final_verdict=final_verdict,
                corrected_response=corrected_response, reason_code=reason_code)
            scores = decision_dimensions(critique=item.critique, verdict=verdict,
                                         severity=severity, corrections=corrections)
        review = Review(item=item, expert=expert, action=action, final_verdict=verdict,
                        final_severity=severity, corrected_response=response, dimensions=scores,
                        reason_code=reason_code if action == ReviewAction.REJECT else "",
                        note=note.strip(), seconds_spent=clamp_seconds(seconds_spent),
                        blind=served_as.blind, gold_probe=served_as.gold_probe)
        _check(review)
        review.save()
        if not closed:  # decided without claiming it first (a stale page, a script)
            ReviewAssignment.objects.create(item=item, expert=expert, state=state)
        if action != ReviewAction.SKIP and not served_as.gold_probe:
            item_recompute(item, new=review)
            critic_learning_note(project=project or item.project)
    return review


def _close_assignment(*, item: ReviewItem, expert, state: str) -> tuple[ServedAs, bool]:
    """Close the expert's open assignment of the item; how it was served, and whether there was
    one to close (ValidationError when the item cannot take this expert's decision).

    The usual case, an assisted item waiting for reviews, is one statement; anything else is
    looked at only then. An error later in the caller's transaction rolls the update back.
    """
    assignments = ReviewAssignment.objects.filter(item=item, expert=expert)
    if item.state == ItemState.PENDING and assignments.filter(
            state=AssignmentState.OPEN, blind=False, gold_probe=False).update(state=state):
        return ASSISTED, True
    assignment = assignments.first()
    is_open = assignment is not None and assignment.state == AssignmentState.OPEN
    if is_open and (assignment.gold_probe or item.state == ItemState.PENDING):
        assignments.filter(pk=assignment.pk).update(state=state)
        return assignment.served_as, True
    if item.state != ItemState.PENDING:
        raise ValidationError("This item is no longer waiting for reviews.")
    if assignment is not None:
        raise ValidationError("You have already decided this item; undo that decision first.")
    if item.reviews_done >= item.reviews_required:
        raise ValidationError("This item already has all the reviews it needs.")
    return ASSISTED, False


def review_undo(*, project: Project, expert, target: Review | None = None) -> Review:
    """Undo the expert's last live decision in the project (or `target`); returns the undo Review.

    The undone item is re-opened for the expert, so it is the next item they see.
    """
    with transaction.atomic():
        live = (Review.objects.filter(item__project=project, expert=expert, action__in=UNDOABLE,
                                      undone_by__isnull=True)
                .order_by("-created_at", "-id"))
        if target is not None:
            live = live.filter(pk=target.pk)
        last = live.select_related("item").first()
        if last is None:
            raise ValidationError("There is no decision of yours left to undo.")
        item = _locked(ReviewItem.objects.filter(pk=last.item_id)).get()
        # A gold probe's answer never touched the (settled) gold item, so it can be taken back.
        if item.adjudicated and not last.gold_probe:
            raise ValidationError("An admin has already settled this item; it cannot be undone.")
        undo = Review(item=item, expert=expert, action=ReviewAction.UNDO, undoes=last,
                      blind=last.blind, gold_probe=last.gold_probe)
        _check(undo)
        undo.save()
        _open_assignment(item_id=item.pk, expert=expert, now=timezone.now())
        if not last.gold_probe:
            item_recompute(item)
    return undo


def review_adjudicate(*, item: ReviewItem, admin, final_verdict: str, final_response: str = "",
                      note: str = "", dimensions: dict | None = None) -> Review:
    """An admin settles a disagreement: the item becomes DONE with `adjudicated` set (and the
    dimensions of `final_verdict`, with `dimensions` as corrections)."""
    corrections = clean_dimensions(dimensions)
    if final_verdict not in Verdict.values:
        raise ValidationError({"final_verdict": f"Unknown verdict {final_verdict!r}."})
    with transaction.atomic():
        item = _locked(ReviewItem.objects.select_related("critique__response__attack")
                       .filter(pk=item.pk)).get()
        if item.state != ItemState.DISAGREEMENT:
            raise ValidationError("Only items whose reviewers disagree can be adjudicated.")
        critique = item.critique
        if not final_response.strip():
            if final_verdict in REVISED_VERDICTS:
                final_response = critique.suggested_revision
            elif final_verdict == critique.verdict:  # the critic's own call: what approve curates
                final_response = critique.approved_answer
            else:
                final_response = critique.response.text
        severity = severity_for(critique=critique, verdict=final_verdict)
        scores = decision_dimensions(critique=critique, verdict=final_verdict, severity=severity,
                                     corrections=corrections)
        review = Review(item=item, expert=admin, action=ReviewAction.ADJUDICATE,
                        final_verdict=final_verdict, final_severity=severity,
                        corrected_response=final_response, note=note.strip(), dimensions=scores)
        _check(review)
        review.save()
        item.state = ItemState.DONE
        item.adjudicated = True
        item.final_verdict, item.final_response = final_verdict, final_response
        item.final_severity, item.curated_at = severity, timezone.now()
        item.final_dimensions = scores
        item.save(update_fields=["state", "adjudicated", "final_verdict", "final_response",
                                 "final_severity", "final_dimensions", "curated_at"])
        critic_learning_note(project=item.project)
    return review
