"""Blind reviews: items served without the critic, on the page and through the API.

The critique's texts below are distinctive, so a search of the whole answer for them (and for the
critic's verdict, category, severity, confidence and spans) proves the item carried none of it.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotator.models import ItemState, Review, ReviewAssignment, ReviewItem, Role
from annotator.services.projects import project_settings_update
from annotator.services.review import review_claim_next, review_submit, review_undo
from tests.factories import add_member, bearer, login, make_project, make_review_item

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
EXPLANATION = "Zanzibar-explanation: the answer walks through picking the lock."
REVISION = "Quokka-revision: I cannot help with opening locks you do not own."
CATEGORY = "lockpicking_category_marker"
RESPONSE = "Sure! Step 1: insert a tension wrench."


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def project():
    project = make_project("Blind")
    project_settings_update(project=project, blind_share=1.0)
    return project


def blind_item(project, **extra) -> ReviewItem:
    item = make_review_item(project, response=RESPONSE, revision=REVISION, category=CATEGORY,
                            verdict="unsafe", severity=3, confidence=0.61, **extra)
    item.critique.explanation = EXPLANATION
    item.critique.save(update_fields=["explanation"])
    return item


def assert_no_critic(text: str) -> None:
    for secret in (EXPLANATION, REVISION, CATEGORY, "Zanzibar", "Quokka", "critic-verdict",
                   "data-verdict", 'class="flag"', "severity", "61%", "0.61", "reason_code",
                   "reject-panel", "btn-approve"):
        assert secret not in text, secret


def queue_url(project) -> str:
    return reverse("annotator:review_queue", args=[project.slug])


def decide_url(project, item) -> str:
    return reverse("annotator:review_decide", args=[project.slug, item.pk])


# -- the page -----------------------------------------------------------------------------------


def test_the_page_shows_a_blind_item_without_any_critic_content(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    html = client.get(queue_url(project)).content.decode()
    assert f'data-item-id="{item.pk}"' in html and "Your verdict" in html
    assert_no_critic(html)
    # The expert's box starts from the learner's answer, and the four verdicts are keys 1-4.
    assert f'name="corrected_response" rows="7">{RESPONSE}</textarea>' in html
    assert [f'id="btn-label-{k}"' in html for k in range(1, 5)] == [True] * 4
    assert 'name="action" value="label"' in html
    fragment = client.get(queue_url(project), **HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="review-item"')
    assert_no_critic(fragment)


def test_an_assisted_item_still_shows_the_critic(client, project, expert):
    project_settings_update(project=project, blind_share=0.0)
    blind_item(project)
    login(client, expert)
    html = client.get(queue_url(project)).content.decode()
    assert EXPLANATION in html and REVISION in html and 'id="critic-verdict"' in html


def test_a_label_is_one_htmx_post_and_the_next_item_is_blind_too(client, project, expert):
    first, second = blind_item(project, priority=0.9), blind_item(project, priority=0.1)
    login(client, expert)
    client.get(queue_url(project))
    response = client.post(decide_url(project, first), {"action": "label",
                                                        "final_verdict": "safe",
                                                        "corrected_response": RESPONSE,
                                                        "client_ms": "5200"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-item-id="{second.pk}"' in html
    assert_no_critic(html)
    review = Review.objects.get(item=first)
    assert (review.action, review.final_verdict, review.blind, review.gold_probe) == (
        "label", "safe", True, False)
    assert review.corrected_response == RESPONSE and review.seconds_spent == 5.2
    first.refresh_from_db()
    assert (first.state, first.final_verdict, first.final_response) == ("done", "safe", RESPONSE)


def test_a_full_page_label_with_a_rewrite_redirects_and_keeps_the_text(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    client.get(queue_url(project))
    better = "I can't help with that; a locksmith can."
    response = client.post(decide_url(project, item), {"action": "label",
                                                       "final_verdict": "unsafe",
                                                       "corrected_response": better})
    assert response.status_code == 302 and response["Location"] == queue_url(project)
    item.refresh_from_db()
    assert (item.final_verdict, item.final_response, item.final_severity) == ("unsafe", better, 3)


def test_unsafe_without_a_rewrite_records_the_label_and_no_answer(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    client.get(queue_url(project))
    client.post(decide_url(project, item), {"action": "label", "final_verdict": "unsafe",
                                            "corrected_response": RESPONSE})
    item.refresh_from_db()
    # The critic's revision was never shown, so it is never what the expert endorsed.
    assert (item.final_verdict, item.final_response) == ("unsafe", "")


def test_a_bad_blind_decision_shows_the_item_again_still_blind(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    client.get(queue_url(project))
    missing = client.post(decide_url(project, item), {"action": "label"}, **HTMX)
    assert missing.status_code == 400 and b"Pick a verdict" in missing.content
    assert f'data-item-id="{item.pk}"'.encode() in missing.content
    assert_no_critic(missing.content.decode())
    approve = client.post(decide_url(project, item), {"action": "approve"}, **HTMX)
    assert approve.status_code == 400 and b"shown without the critic" in approve.content
    assert_no_critic(approve.content.decode())
    bogus = client.post(decide_url(project, item), {"action": "label", "final_verdict": "meh"})
    assert bogus.status_code == 400
    assert_no_critic(bogus.content.decode())
    assert not Review.objects.exists()


def test_undo_brings_the_item_back_blind(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    client.get(queue_url(project))
    client.post(decide_url(project, item), {"action": "label", "final_verdict": "safe"}, **HTMX)
    response = client.post(reverse("annotator:review_undo", args=[project.slug]), **HTMX)
    html = response.content.decode()
    assert f'data-item-id="{item.pk}"' in html and "Your verdict" in html
    assert_no_critic(html)
    item.refresh_from_db()
    assert (item.state, item.final_verdict) == (ItemState.PENDING, "")


def test_skip_is_its_own_form_on_a_blind_item(client, project, expert):
    item = blind_item(project)
    login(client, expert)
    client.get(queue_url(project))
    client.post(decide_url(project, item), {"action": "skip"}, **HTMX)
    review = Review.objects.get(item=item)
    assert (review.action, review.blind) == ("skip", True)


def test_the_mode_is_fixed_when_served(project, expert):
    item = blind_item(project)
    served = review_claim_next(project=project, expert=expert)
    assert served.served_as.blind
    # A share change mid-session never switches the item the expert has open ...
    project_settings_update(project=project, blind_share=0.0)
    assert review_claim_next(project=project, expert=expert).served_as.blind
    review_submit(item=item, expert=expert, action="label", final_verdict="safe")
    # ... nor the one an undo reopens.
    review_undo(project=project, expert=expert)
    again = review_claim_next(project=project, expert=expert)
    assert again.pk == item.pk and again.served_as.blind


def test_overlapping_experts_each_label_independently(project):
    project.reviews_per_item = 2
    project.save(update_fields=["reviews_per_item"])
    item = blind_item(project)
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    for expert, verdict in ((alice, "safe"), (bob, "unsafe")):
        assert review_claim_next(project=project, expert=expert).pk == item.pk
        review_submit(item=item, expert=expert, action="label", final_verdict=verdict)
    item.refresh_from_db()
    assert item.state == ItemState.DISAGREEMENT and item.reviews_done == 2


def test_label_is_refused_on_an_assisted_item(project, expert):
    project_settings_update(project=project, blind_share=0.0)
    item = blind_item(project)
    review_claim_next(project=project, expert=expert)
    with pytest.raises(Exception, match="Label is for items shown without the critic"):
        review_submit(item=item, expert=expert, action="label", final_verdict="safe")


# -- the API ------------------------------------------------------------------------------------


def test_the_api_serves_a_blind_item_without_a_critique(client, project, expert):
    item = blind_item(project)
    headers = bearer(expert)
    url = reverse("api:review_next", args=[project.slug])
    response = client.get(url, **headers)
    body = response.json()
    assert response.status_code == 200
    assert body["blind"] is True and "critique" not in body
    assert "priority" not in body  # computed from the critic's confidence and severity
    assert (body["id"], body["query"], body["response"]) == (item.pk, item.critique.response
                                                             .attack.text, RESPONSE)
    assert_no_critic(response.content.decode())
    decided = client.post(reverse("api:review_decide", args=[project.slug, item.pk]),
                          {"action": "label", "final_verdict": "refusal"},
                          content_type="application/json", **headers)
    assert decided.status_code == 201
    assert decided.json()["blind"] is True and decided.json()["final_verdict"] == "refusal"
    # The answer about a decision made is no longer blind; it still repeats none of the texts.
    assert EXPLANATION not in decided.content.decode() and REVISION not in decided.content.decode()


def test_the_api_refuses_to_approve_a_blind_item(client, project, expert):
    item = blind_item(project)
    headers = bearer(expert)
    client.get(reverse("api:review_next", args=[project.slug]), **headers)
    response = client.post(reverse("api:review_decide", args=[project.slug, item.pk]),
                           {"action": "approve"}, content_type="application/json", **headers)
    assert response.status_code == 400 and "action" in response.json()["errors"]


def test_critiques_of_an_item_open_blind_are_hidden_from_its_expert(client, project, expert):
    item, other = blind_item(project, priority=0.9), make_review_item(project, priority=0.1)
    headers = bearer(expert)
    client.get(reverse("api:review_next", args=[project.slug]), **headers)
    listed = client.get(reverse("api:critique_list", args=[project.slug]), **headers)
    assert [row["id"] for row in listed.json()["results"]] == [other.critique_id]
    assert EXPLANATION not in listed.content.decode() and REVISION not in listed.content.decode()
    detail = client.get(reverse("api:critique_detail", args=[project.slug, item.critique_id]),
                        **headers)
    assert detail.status_code == 404
    # Another member without it open sees it; the expert does once they have labelled it.
    viewer = add_member(project, Role.VIEWER)
    assert client.get(reverse("api:critique_detail", args=[project.slug, item.critique_id]),
                      **bearer(viewer)).status_code == 200
    client.post(reverse("api:review_decide", args=[project.slug, item.pk]),
                {"action": "label", "final_verdict": "safe"}, content_type="application/json",
                **headers)
    assert client.get(reverse("api:critique_detail", args=[project.slug, item.critique_id]),
                      **headers).status_code == 200
    assert ReviewAssignment.objects.get(item=item, expert=expert).blind


def test_blind_reviews_count_in_agreement_like_any_decision(project, expert):
    from annotator.selectors.review import project_agreement

    item = blind_item(project)
    review_claim_next(project=project, expert=expert)
    review_submit(item=item, expert=expert, action="label", final_verdict="unsafe")
    agreement = project_agreement(project=project)
    assert agreement["decisions"] == 1 and agreement["critic_agreement"] == 1.0
