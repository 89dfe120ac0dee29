"""What each decision means for the item: approve, edit, reject, skip, agreement, adjudication."""

import pytest
from django.core.exceptions import ValidationError

from annotator.models import ItemState, ReviewAction, Role
from annotator.selectors.review import highlight_segments, project_agreement, word_diff
from annotator.services.review import review_adjudicate, review_claim_next, review_submit
from tests.factories import add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db

ORIGINAL = "Sure! Step 1: insert a tension wrench."
REVISION = "I can't help with that."


def decide(item, expert, action, **kwargs):
    review = review_submit(item=item, expert=expert, action=action, **kwargs)
    item.refresh_from_db()
    return review


def test_approve_an_unsafe_verdict_takes_the_revision(project, expert):
    item = make_review_item(project, response=ORIGINAL, revision=REVISION, severity=3)
    decide(item, expert, ReviewAction.APPROVE, seconds_spent=4.5)
    assert (item.state, item.final_verdict, item.final_response, item.final_severity) == (
        ItemState.DONE, "unsafe", REVISION, 3)
    assert item.curated_at is not None


def test_approve_a_safe_verdict_keeps_the_original(project, expert):
    item = make_review_item(project, response="Use a locksmith.", verdict="safe", revision="")
    decide(item, expert, ReviewAction.APPROVE)
    assert (item.final_verdict, item.final_response) == ("safe", "Use a locksmith.")


def test_edit_takes_the_experts_text(project, expert):
    item = make_review_item(project)
    review = decide(item, expert, ReviewAction.EDIT, corrected_response="Call a locksmith.")
    assert review.action == ReviewAction.EDIT
    assert (item.final_verdict, item.final_response) == ("unsafe", "Call a locksmith.")


def test_edit_needs_text(project, expert):
    item = make_review_item(project)
    with pytest.raises(ValidationError):
        decide(item, expert, ReviewAction.EDIT, corrected_response="   ")
    assert item.reviews.count() == 0


def test_reject_flips_the_verdict_and_records_the_reason(project, expert):
    item = make_review_item(project, response=ORIGINAL, verdict="unsafe", severity=3)
    review = decide(item, expert, ReviewAction.REJECT, reason_code="false_alarm", note="fiction")
    assert (review.reason_code, review.note) == ("false_alarm", "fiction")
    assert (item.final_verdict, item.final_response, item.final_severity) == ("safe", ORIGINAL, 0)


@pytest.mark.parametrize("critic, flipped", [("refusal", "over_refusal"),
                                             ("over_refusal", "refusal"), ("safe", "unsafe")])
def test_reject_flips_each_verdict(project, expert, critic, flipped):
    item = make_review_item(project, verdict=critic)
    decide(item, expert, ReviewAction.REJECT, reason_code="guidelines", corrected_response="Better.")
    assert item.final_verdict == flipped


def test_reject_needs_a_reason_and_a_different_verdict(project, expert):
    item = make_review_item(project, verdict="unsafe")
    with pytest.raises(ValidationError):
        decide(item, expert, ReviewAction.REJECT)
    with pytest.raises(ValidationError):
        decide(item, expert, ReviewAction.REJECT, reason_code="other", final_verdict="unsafe")


def test_an_unknown_action_is_an_error(project, expert):
    with pytest.raises(ValidationError):
        decide(make_review_item(project), expert, "delete")


def test_seconds_spent_are_clamped(project, expert):
    review = decide(make_review_item(project), expert, ReviewAction.APPROVE, seconds_spent=86400)
    assert review.seconds_spent == 900.0


def test_two_agreeing_experts_make_the_item_done():
    project = make_project("Two", reviews_per_item=2)
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    item = make_review_item(project)
    decide(item, alice, ReviewAction.APPROVE)
    assert item.state == ItemState.PENDING
    decide(item, bob, ReviewAction.EDIT, corrected_response="Ask a locksmith.")
    assert (item.state, item.final_verdict, item.final_response) == (
        ItemState.DONE, "unsafe", "Ask a locksmith.")


def test_disagreeing_experts_go_to_adjudication_and_an_admin_settles_it():
    project = make_project("Adjudicate", reviews_per_item=2)
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    admin = add_member(project, Role.ADMIN)
    item = make_review_item(project, response=ORIGINAL)
    decide(item, alice, ReviewAction.APPROVE)
    decide(item, bob, ReviewAction.REJECT, reason_code="false_alarm")
    assert item.state == ItemState.DISAGREEMENT and item.final_verdict == ""
    assert review_claim_next(project=project, expert=add_member(project, Role.EXPERT)) is None
    review = review_adjudicate(item=item, admin=admin, final_verdict="safe")
    item.refresh_from_db()
    assert review.action == ReviewAction.ADJUDICATE
    assert (item.state, item.adjudicated, item.final_verdict, item.final_response) == (
        ItemState.DONE, True, "safe", ORIGINAL)
    with pytest.raises(ValidationError):
        review_adjudicate(item=item, admin=admin, final_verdict="safe")


def test_agreement_figures():
    project = make_project("Agreement", reviews_per_item=2)
    alice, bob = add_member(project, Role.EXPERT, "alice"), add_member(project, Role.EXPERT, "bob")
    for verdict, bob_agrees in [("unsafe", True), ("unsafe", True), ("safe", False), ("safe", True)]:
        item = make_review_item(project, verdict=verdict, revision="Better.")
        decide(item, alice, ReviewAction.APPROVE)
        if bob_agrees:
            decide(item, bob, ReviewAction.APPROVE)
        else:
            decide(item, bob, ReviewAction.REJECT, reason_code="missed_harm")
    figures = project_agreement(project=project)
    assert figures["decisions"] == 8 and figures["overlapping_items"] == 4
    assert figures["critic_agreement"] == 7 / 8
    (pair,) = figures["pairs"]
    assert pair["experts"] == ("alice", "bob") and pair["items"] == 4
    # Alice: u,u,s,s; Bob: u,u,u,s -> p_o = 3/4, p_e = (2*3 + 2*1)/16 = 1/2, kappa = 1/2.
    assert pair["kappa"] == pytest.approx(0.5)
    assert -1 <= figures["alpha"] < 1


def test_highlight_segments_clamp_and_merge_untrusted_spans():
    text = "abcdefghij"
    spans = [{"start": 2, "end": 4}, {"start": 3, "end": 6}, {"start": 8, "end": 99},
             {"start": "x", "end": 3}, "junk", {"start": 7, "end": 7}]
    pieces = [(s.text, s.flagged) for s in highlight_segments(text, spans)]
    assert pieces == [("ab", False), ("cdef", True), ("gh", False), ("ij", True)]
    assert "".join(p for p, _ in pieces) == text


def test_word_diff_marks_inserted_and_deleted_words():
    pieces = [(p.kind, p.text) for p in word_diff("a quick fox", "a slow fox")]
    assert pieces == [("equal", "a "), ("delete", "quick"), ("insert", "slow"), ("equal", " fox")]


def test_word_diff_reads_as_an_edit_not_as_word_salad():
    # A space or a short word two changes share does not split them...
    pieces = [(p.kind, p.text) for p in word_diff(
        "Mix flour and water. Then bake it at 200 C for an hour and a half.",
        "Mix flour and water. Then bake it at 220 C for half an hour.")]
    assert pieces == [("equal", "Mix flour and water. Then bake it at "), ("delete", "200"),
                      ("insert", "220"), ("equal", " C for "), ("delete", "an hour and a half."),
                      ("insert", "half an hour.")]
    # ...and a rewrite sharing a few words is one deletion and one insertion (the demo's loop).
    before = "The pyramid scheme is a type of financial pyramid that uses a pyramid scheme."
    after = "I can't help with that. I can explain the legitimate ways to get financial advice."
    assert [(p.kind, p.text) for p in word_diff(before, after)] == [("delete", before),
                                                                   ("insert", after)]
