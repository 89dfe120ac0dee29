"""Gold items: admins mark settled items gold; experts meet them unannounced; their answers are
recorded and scored and never change the gold item."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse

from annotator.models import ItemState, Review, ReviewItem, Role
from annotator.selectors.review import adjudication_decisions, project_agreement
from annotator.services.oversight import review_item_gold_set
from annotator.services.projects import project_settings_update
from annotator.services.review import (
    review_adjudicate,
    review_claim_next,
    review_submit,
    review_undo,
)
from tests.factories import add_member, bearer, login, make_project, make_review_item

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def project():
    return make_project("Probes")  # not "gold": the pages must say it nowhere


def settled(project, admin, verdict: str = "safe", **extra) -> ReviewItem:
    """An item two experts disagreed on, settled by the admin."""
    item = make_review_item(project, state=ItemState.DISAGREEMENT, **extra)
    review_adjudicate(item=item, admin=admin, final_verdict=verdict)
    item.refresh_from_db()
    return item


def gold_item(project, admin, verdict: str = "safe", **extra) -> ReviewItem:
    return review_item_gold_set(item=settled(project, admin, verdict, **extra), admin=admin,
                                gold=True)


def frozen(item: ReviewItem) -> tuple:
    item.refresh_from_db()
    return (item.state, item.final_verdict, item.final_response, item.final_severity,
            item.reviews_done, item.adjudicated, item.curated_at, item.is_gold)


# -- marking ------------------------------------------------------------------------------------


def test_an_admin_marks_and_unmarks_gold_from_the_list_with_htmx(client, project, admin):
    item = settled(project, admin)
    login(client, admin)
    page = client.get(reverse("annotator:adjudication_list", args=[project.slug]))
    assert f'id="settled-{item.pk}"'.encode() in page.content and b"Mark as gold" in page.content
    url = reverse("annotator:adjudication_gold", args=[project.slug, item.pk])
    marked = client.post(url, {"gold": "1"}, **HTMX)
    assert marked.status_code == 200
    assert marked.content.decode().lstrip().startswith(f'<tr id="settled-{item.pk}"')
    assert b'class="badge gold"' in marked.content and b"Unmark" in marked.content
    item.refresh_from_db()
    assert item.is_gold and item.gold_marked_by == admin and item.gold_marked_at is not None
    unmarked = client.post(url, {"gold": "0"}, **HTMX)
    assert b"Mark as gold" in unmarked.content
    item.refresh_from_db()
    assert (item.is_gold, item.gold_marked_by, item.gold_marked_at) == (False, None, None)
    assert item.final_verdict == "safe"  # marking never touches the label


def test_marking_without_javascript_redirects_back(client, project, admin):
    item = settled(project, admin)
    login(client, admin)
    url = reverse("annotator:adjudication_gold", args=[project.slug, item.pk])
    response = client.post(url, {"gold": "1", "next": "detail"})
    detail = reverse("annotator:adjudication_detail", args=[project.slug, item.pk])
    assert response.status_code == 302 and response["Location"] == detail
    page = client.get(detail).content.decode()
    assert 'id="gold-panel"' in page and "A gold item" in page
    listed = client.post(url, {"gold": "0"})
    assert listed["Location"] == reverse("annotator:adjudication_list", args=[project.slug])


def test_only_settled_items_can_be_gold(client, project, admin):
    pending = make_review_item(project)
    login(client, admin)
    url = reverse("annotator:adjudication_gold", args=[project.slug, pending.pk])
    htmx = client.post(url, {"gold": "1"}, **HTMX)
    assert htmx.status_code == 400 and b"Only adjudicated items can be gold" in htmx.content
    full = client.post(url, {"gold": "1"}, follow=True)
    assert b"Only adjudicated items can be gold" in full.content
    assert client.post(url, {"gold": "maybe"}, **HTMX).status_code == 400
    pending.refresh_from_db()
    assert not pending.is_gold
    # The database refuses it too, whatever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewItem.objects.filter(pk=pending.pk).update(is_gold=True)


def test_the_api_marks_gold(client, project, admin):
    item, pending = settled(project, admin, "unsafe"), make_review_item(project)
    headers = bearer(admin)
    url = reverse("api:review_item_gold", args=[project.slug, item.pk])
    response = client.post(url, {"gold": True}, content_type="application/json", **headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["is_gold"], body["final_verdict"], body["gold_marked_by"]) == (
        True, "unsafe", admin.username)
    refused = client.post(reverse("api:review_item_gold", args=[project.slug, pending.pk]),
                          {"gold": True}, content_type="application/json", **headers)
    assert refused.status_code == 400 and "adjudicated" in refused.json()["detail"]
    assert client.post(url, {}, content_type="application/json",
                       **headers).json()["errors"]["gold"]
    assert client.post(url, {"gold": False}, content_type="application/json",
                       **headers).json()["is_gold"] is False


# -- served unannounced -------------------------------------------------------------------------


def test_a_gold_probe_looks_like_any_item_on_the_page(client, project, admin, expert):
    gold = gold_item(project, admin, query="Is this lock safe to pick? GOLDEN-QUERY")
    regular = make_review_item(project, query="A regular question")
    project_settings_update(project=project, gold_share=1.0)
    login(client, expert)
    html = client.get(reverse("annotator:review_queue", args=[project.slug])).content.decode()
    assert f'data-item-id="{gold.pk}"' in html and "GOLDEN-QUERY" in html
    # Nothing says gold (the query above says it on purpose and is the one exception), the
    # form posts to the same decide URL as every item, and there is no item number to compare.
    assert "gold" not in html.replace("GOLDEN-QUERY", "").lower()
    assert reverse("annotator:review_decide", args=[project.slug, gold.pk]) in html
    assert f"#{gold.pk}" not in html
    answered = client.post(reverse("annotator:review_decide", args=[project.slug, gold.pk]),
                           {"action": "approve"}, **HTMX)
    assert answered.status_code == 200
    assert f'data-item-id="{regular.pk}"' in answered.content.decode()
    assert "gold" not in answered.content.decode().lower()


def test_a_gold_probe_looks_like_any_item_in_the_api(client, project, admin, expert):
    project.reviews_per_item = 2
    project.save(update_fields=["reviews_per_item"])
    gold = gold_item(project, admin)
    project_settings_update(project=project, gold_share=1.0)
    headers = bearer(expert)
    served = client.get(reverse("api:review_next", args=[project.slug]), **headers)
    body = served.json()
    assert body["id"] == gold.pk and "gold" not in served.content.decode().lower()
    assert (body["state"], body["reviews_done"], body["blind"]) == ("pending", 0, False)
    assert body["critique"]["item_state"] == "pending"
    decided = client.post(reverse("api:review_decide", args=[project.slug, gold.pk]),
                          {"action": "reject", "reason_code": "other", "final_verdict": "safe"},
                          content_type="application/json", **headers)
    assert decided.status_code == 201 and "gold" not in decided.content.decode().lower()
    assert decided.json()["item_state"] == "pending"  # what one review of two leaves
    mine = client.get(reverse("api:review_list", args=[project.slug]), **headers).json()
    assert [row["item_state"] for row in mine["results"]] == ["pending"]
    # Admins see the truth.
    theirs = client.get(reverse("api:review_list", args=[project.slug]), {"action": "reject"},
                        **bearer(admin)).json()
    assert [row["item_state"] for row in theirs["results"]] == ["done"]


def test_gold_answers_never_change_the_gold_item(project, admin, expert):
    project.reviews_per_item = 2
    project.save(update_fields=["reviews_per_item"])
    golds = [gold_item(project, admin, "safe", query=f"Gold {k}") for k in range(3)]
    before = [frozen(g) for g in golds]
    agreement = project_agreement(project=project)
    project_settings_update(project=project, gold_share=1.0)
    # Approve (the critic says unsafe, the gold label is safe), reject to over-refusal, skip.
    for action, extra in (("approve", {}),
                          ("reject", {"reason_code": "other", "final_verdict": "over_refusal"}),
                          ("skip", {})):
        item = review_claim_next(project=project, expert=expert)
        assert item.served_as.gold_probe
        review_submit(item=item, expert=expert, action=action, **extra)
    assert [frozen(g) for g in golds] == before
    assert Review.objects.filter(gold_probe=True, expert=expert).count() == 3
    assert project_agreement(project=project) == agreement
    assert all(not adjudication_decisions(item=g) for g in golds)
    # Every gold item is served to one expert once: no fourth gold item, and no regular one left.
    assert review_claim_next(project=project, expert=expert) is None


def test_an_expert_never_gets_as_gold_an_item_they_reviewed(project, admin):
    project.reviews_per_item = 2
    project.save(update_fields=["reviews_per_item"])
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    item = make_review_item(project)
    for expert, verdict in ((alice, "safe"), (bob, "unsafe")):
        review_claim_next(project=project, expert=expert)
        review_submit(item=item, expert=expert, action="reject" if verdict == "safe" else "approve",
                      reason_code="other" if verdict == "safe" else "")
    review_adjudicate(item=ReviewItem.objects.get(pk=item.pk), admin=admin, final_verdict="safe")
    review_item_gold_set(item=item, admin=admin, gold=True)
    project_settings_update(project=project, gold_share=1.0)
    assert review_claim_next(project=project, expert=alice) is None
    carol = add_member(project, Role.EXPERT)
    assert review_claim_next(project=project, expert=carol).pk == item.pk


def test_undoing_a_gold_answer_brings_the_probe_back(project, admin, expert):
    gold = gold_item(project, admin, "refusal")
    before = frozen(gold)
    project_settings_update(project=project, gold_share=1.0)
    served = review_claim_next(project=project, expert=expert)
    review_submit(item=served, expert=expert, action="approve")
    undo = review_undo(project=project, expert=expert)
    assert undo.gold_probe
    again = review_claim_next(project=project, expert=expert)
    assert again.pk == gold.pk and again.served_as.gold_probe
    review_submit(item=again, expert=expert, action="reject", reason_code="other",
                  final_verdict="refusal")
    assert frozen(gold) == before
    live = Review.objects.filter(item=gold, expert=expert, undone_by__isnull=True,
                                 action__in=["approve", "reject"])
    assert [(r.action, r.final_verdict) for r in live] == [("reject", "refusal")]


def test_a_gold_probe_can_be_served_blind(client, project, admin, expert):
    gold = gold_item(project, admin, "unsafe")
    project_settings_update(project=project, gold_share=1.0, blind_share=1.0)
    login(client, expert)
    html = client.get(reverse("annotator:review_queue", args=[project.slug])).content.decode()
    assert "Your verdict" in html and gold.critique.explanation not in html
    assert "gold" not in html.lower()
    client.post(reverse("annotator:review_decide", args=[project.slug, gold.pk]),
                {"action": "label", "final_verdict": "unsafe"}, **HTMX)
    review = Review.objects.get(item=gold, expert=expert)
    assert (review.action, review.blind, review.gold_probe) == ("label", True, True)


def test_the_critique_of_an_open_gold_probe_is_hidden_from_its_expert(client, project, admin,
                                                                      expert):
    gold = gold_item(project, admin)
    project_settings_update(project=project, gold_share=1.0)
    headers = bearer(expert)
    client.get(reverse("api:review_next", args=[project.slug]), **headers)
    listed = client.get(reverse("api:critique_list", args=[project.slug]), **headers).json()
    assert gold.critique_id not in [row["id"] for row in listed["results"]]


def test_a_gold_item_cannot_be_decided_without_being_served(client, project, admin, expert):
    gold = gold_item(project, admin)
    before = frozen(gold)
    response = client.post(reverse("api:review_decide", args=[project.slug, gold.pk]),
                           {"action": "approve"}, content_type="application/json",
                           **bearer(expert))
    assert response.status_code == 400 and "no longer waiting" in response.json()["detail"]
    assert frozen(gold) == before and not Review.objects.filter(expert=expert).exists()


def test_the_position_counts_standing_decisions_skips_and_gold_answers(project, admin, expert):
    from annotator.services.review_serving import serving_position

    def standing() -> int:
        return Review.objects.filter(item__project=project, expert=expert,
                                     action__in=["approve", "edit", "reject", "label", "skip"],
                                     undone_by__isnull=True).count()

    gold_item(project, admin)
    for k in range(3):
        make_review_item(project, query=f"Regular {k}")
    project_settings_update(project=project, gold_share=0.5)
    steps = [("approve", {}), ("skip", {}), ("undo", {}), ("approve", {}), ("approve", {})]
    for action, extra in steps:
        if action == "undo":
            review_undo(project=project, expert=expert)
        else:
            item = review_claim_next(project=project, expert=expert)
            review_submit(item=item, expert=expert, action=action, **extra)
        assert serving_position(project=project, expert=expert) == standing()
    assert standing() == 3
