"""Queue rules of the review loop: priority, overlap, no duplicates, expiry, skip and undo."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotator.models import ItemState, Review, ReviewAction, ReviewAssignment, Role
from annotator.models.reviews import AssignmentState
from annotator.services.review import (
    ASSIGNMENT_TTL,
    review_claim_next,
    review_submit,
    review_undo,
)
from tests.factories import add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db


def claim(project, expert):
    return review_claim_next(project=project, expert=expert)


def test_it_hands_out_the_highest_priority_first(project):
    expert = add_member(project, Role.EXPERT)
    low = make_review_item(project, priority=0.1)
    high = make_review_item(project, priority=0.9)
    middle = make_review_item(project, priority=0.5)
    order = []
    for _ in range(3):
        item = claim(project, expert)
        order.append(item.pk)
        review_submit(item=item, expert=expert, action=ReviewAction.APPROVE)
    assert order == [high.pk, middle.pk, low.pk]
    assert claim(project, expert) is None


def test_it_ignores_items_that_are_not_pending(project):
    expert = add_member(project, Role.EXPERT)
    make_review_item(project, priority=5, state=ItemState.DONE)
    make_review_item(project, priority=4, state=ItemState.DISAGREEMENT)
    pending = make_review_item(project, priority=1)
    assert claim(project, expert).pk == pending.pk


def test_it_returns_the_open_item_again_until_decided(project):
    expert = add_member(project, Role.EXPERT)
    make_review_item(project, priority=0.2)
    first = claim(project, expert)
    make_review_item(project, priority=0.9)  # a better item arrives meanwhile
    assert claim(project, expert).pk == first.pk


def test_with_overlap_one_an_open_item_is_not_handed_to_a_second_expert(project):
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    top = make_review_item(project, priority=0.9)
    other = make_review_item(project, priority=0.1)
    assert claim(project, alice).pk == top.pk
    assert claim(project, bob).pk == other.pk


def test_with_overlap_two_two_experts_see_the_same_item_and_a_third_does_not():
    project = make_project("Overlap", reviews_per_item=2)
    alice, bob, carol = (add_member(project, Role.EXPERT) for _ in range(3))
    top = make_review_item(project, priority=0.9)
    second = make_review_item(project, priority=0.1)
    assert claim(project, alice).pk == top.pk
    assert claim(project, bob).pk == top.pk
    assert claim(project, carol).pk == second.pk
    review_submit(item=top, expert=alice, action=ReviewAction.APPROVE)
    top.refresh_from_db()
    assert top.state == ItemState.PENDING and top.reviews_done == 1
    # Alice never gets it again; Bob still has it open.
    assert claim(project, alice).pk == second.pk


def test_nobody_gets_an_item_twice(project):
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project)
    review_submit(item=claim(project, expert), expert=expert, action=ReviewAction.APPROVE)
    assert claim(project, expert) is None
    with pytest.raises(ValidationError):
        review_submit(item=item, expert=expert, action=ReviewAction.APPROVE)
    assert Review.objects.filter(item=item).count() == 1


def test_an_abandoned_assignment_expires_and_the_item_comes_back(project):
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    item = make_review_item(project)
    assert claim(project, alice).pk == item.pk
    assert claim(project, bob) is None
    ReviewAssignment.objects.filter(item=item, expert=alice).update(
        opened_at=timezone.now() - ASSIGNMENT_TTL - timedelta(seconds=1))
    assert claim(project, bob).pk == item.pk


def test_a_skipped_item_stays_available_to_others_but_not_to_me(project):
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    item = make_review_item(project)
    review_submit(item=claim(project, alice), expert=alice, action=ReviewAction.SKIP)
    item.refresh_from_db()
    assert item.state == ItemState.PENDING and item.reviews_done == 0
    assert claim(project, alice) is None
    assert claim(project, bob).pk == item.pk


def test_undo_puts_the_item_back_in_my_queue_and_recomputes_it(project):
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project, priority=0.1)
    make_review_item(project, priority=0.05)
    decision = review_submit(item=claim(project, expert), expert=expert, action=ReviewAction.APPROVE)
    item.refresh_from_db()
    assert item.state == ItemState.DONE and item.final_verdict == "unsafe"
    undo = review_undo(project=project, expert=expert)
    assert undo.action == ReviewAction.UNDO and undo.undoes_id == decision.pk
    item.refresh_from_db()
    assert (item.state, item.reviews_done, item.final_verdict, item.curated_at) == (
        ItemState.PENDING, 0, "", None)
    assert claim(project, expert).pk == item.pk
    # The undone review is still there, unchanged: the history is append-only.
    assert Review.objects.get(pk=decision.pk).action == ReviewAction.APPROVE
    # And the expert can decide the item again, once.
    review_submit(item=item, expert=expert, action=ReviewAction.REJECT, reason_code="false_alarm")
    item.refresh_from_db()
    assert item.state == ItemState.DONE and item.final_verdict == "safe"


def test_undo_with_nothing_to_undo_is_an_error(project):
    with pytest.raises(ValidationError):
        review_undo(project=project, expert=add_member(project, Role.EXPERT))


def test_undo_undoes_a_skip_too(project):
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project)
    review_submit(item=claim(project, expert), expert=expert, action=ReviewAction.SKIP)
    assert claim(project, expert) is None
    review_undo(project=project, expert=expert)
    assert claim(project, expert).pk == item.pk
    assert ReviewAssignment.objects.get(item=item, expert=expert).state == AssignmentState.OPEN
