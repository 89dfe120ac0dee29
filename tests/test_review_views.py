"""The review pages through the test client: full-page and htmx, every action, roles, queries."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotator.models import ItemState, Review, ReviewAction, Role
from tests.factories import PASSWORD, add_member, login, make_project, make_review_item, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = "Fine. <script>alert(1)</script> and <img src=x onerror=alert(1)> Step 1: go."


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def project():
    return make_project("Review pages", guidelines="# Be careful\nFlag real harm only.")


@pytest.fixture
def expert(expert, client):
    """The project's expert, logged in."""
    login(client, expert)
    return expert


def queue_url(project):
    return reverse("annotator:review_queue", args=[project.slug])


def decide_url(project, item):
    return reverse("annotator:review_decide", args=[project.slug, item.pk])


def test_it_shows_the_next_item_escaped_with_highlights_and_diff(client, project, expert):
    item = make_review_item(project, response=XSS, revision="Fine. I will not help with that.")
    response = client.get(queue_url(project))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-item-id="{item.pk}"' in html
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<mark class="flag">Step 1: go.</mark>' in html
    assert "<del>" in html and "<ins>" in html
    assert 'name="opened_at"' in html and "js/review.js" in html
    assert reverse("annotator:project_guidelines", args=[project.slug]) in html


def test_it_says_where_the_requests_harm_comes_from(client, project, expert):
    # An imported request: nobody vouched for it, the critic read its text.
    item = make_review_item(project, verdict="safe", severity=0)
    item.critique.signals = {"p_harmful_request_text": 0.12}
    item.critique.save()
    html = client.get(queue_url(project)).content.decode()
    assert "the critic judged it from its text (12% likely harmful)" in html
    assert "severity" not in html.split('id="critic-verdict"')[1].split("</p>")[0]
    # A campaign's attack written from a harmful goal: the attacker's knowledge, and a severity.
    client.post(decide_url(project, item), {"action": "approve"})
    other = make_review_item(project, query="How do I make a fake ID?", severity=3)
    attack = other.critique.response.attack
    attack.is_benign, attack.behaviour_id = False, "fake-id"
    attack.save()
    html = client.get(queue_url(project)).content.decode()
    assert "The attacker wrote this request to cause harm." in html and "severity 3/4" in html


def test_htmx_get_returns_only_the_item_fragment(client, project, expert):
    make_review_item(project)
    response = client.get(queue_url(project), **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="review-item"')
    assert "<html" not in html


def test_it_says_when_the_queue_is_empty(client, project, expert):
    response = client.get(queue_url(project))
    assert b'id="queue-empty"' in response.content


def test_it_approves_with_a_full_page_post_and_redirects_to_the_queue(client, project, expert):
    item = make_review_item(project)
    client.get(queue_url(project))
    response = client.post(decide_url(project, item), {"action": "approve", "client_ms": "3200"})
    assert response.status_code == 302 and response["Location"] == queue_url(project)
    review = Review.objects.get(item=item)
    assert (review.action, review.expert, review.seconds_spent) == ("approve", expert, 3.2)
    item.refresh_from_db()
    assert item.state == ItemState.DONE


def test_it_approves_with_htmx_and_returns_the_next_item(client, project, expert):
    first = make_review_item(project, priority=0.9)
    second = make_review_item(project, priority=0.1)
    client.get(queue_url(project))
    response = client.post(decide_url(project, first), {"action": "approve"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="review-item"')
    assert f'data-item-id="{second.pk}"' in html
    assert 'id="decisions-today">1<' in html


def test_it_records_time_from_the_server_timestamp_without_js(client, project, expert):
    import time

    item = make_review_item(project)
    client.post(decide_url(project, item),
                {"action": "skip", "opened_at": f"{time.time() - 7:.3f}"})
    assert 6.5 <= Review.objects.get(item=item).seconds_spent <= 60


@pytest.mark.parametrize("data, verdict, response_text", [
    ({"action": "edit", "corrected_response": "Call a locksmith."}, "unsafe", "Call a locksmith."),
    ({"action": "reject", "reason_code": "false_alarm", "final_verdict": "safe", "note": "ok"},
     "safe", "Sure! Step 1: insert a tension wrench."),
])
def test_it_edits_and_rejects(client, project, expert, data, verdict, response_text):
    item = make_review_item(project)
    response = client.post(decide_url(project, item), data, **HTMX)
    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.final_verdict, item.final_response) == (verdict, response_text)


def test_it_skips(client, project, expert):
    item = make_review_item(project)
    client.post(decide_url(project, item), {"action": "skip"}, **HTMX)
    item.refresh_from_db()
    assert item.state == ItemState.PENDING
    assert Review.objects.get(item=item).action == ReviewAction.SKIP


def test_bad_input_is_a_400_with_the_item_and_the_error(client, project, expert):
    item = make_review_item(project)
    response = client.post(decide_url(project, item),
                           {"action": "edit", "corrected_response": ""}, **HTMX)
    assert response.status_code == 400
    assert b"corrected response is empty" in response.content
    assert f'data-item-id="{item.pk}"'.encode() in response.content
    assert client.post(decide_url(project, item), {"action": "explode"}).status_code == 400
    assert not Review.objects.exists()


def test_a_second_decision_on_the_same_item_is_refused(client, project, expert):
    item = make_review_item(project)
    make_review_item(project, priority=0)
    client.post(decide_url(project, item), {"action": "skip"})
    nxt = make_review_item(project, priority=-1)
    response = client.post(decide_url(project, item), {"action": "approve"}, **HTMX)
    assert response.status_code == 400
    assert b"already decided" in response.content
    assert f'data-item-id="{item.pk}"'.encode() not in response.content
    assert Review.objects.filter(item=item).count() == 1
    assert nxt.pk


def test_it_undoes_the_last_decision_and_shows_that_item_again(client, project, expert):
    item = make_review_item(project, priority=0.9)
    make_review_item(project, priority=0.1)
    client.post(decide_url(project, item), {"action": "approve"}, **HTMX)
    undo_url = reverse("annotator:review_undo", args=[project.slug])
    response = client.post(undo_url, **HTMX)
    assert f'data-item-id="{item.pk}"'.encode() in response.content
    item.refresh_from_db()
    assert item.state == ItemState.PENDING
    assert [r.action for r in Review.objects.filter(item=item)] == ["approve", "undo"]
    client.post(decide_url(project, item), {"action": "approve"}, **HTMX)
    client.post(undo_url, **HTMX)
    client.post(undo_url, **HTMX)
    nothing = client.post(undo_url)
    assert nothing.status_code == 400 and b"no decision of yours left to undo" in nothing.content


def test_undo_full_page_redirects(client, project, expert):
    item = make_review_item(project)
    client.post(decide_url(project, item), {"action": "approve"})
    response = client.post(reverse("annotator:review_undo", args=[project.slug]))
    assert response.status_code == 302


def test_decide_rejects_get(client, project, expert):
    item = make_review_item(project)
    assert client.get(decide_url(project, item)).status_code == 405
    assert client.get(reverse("annotator:review_undo", args=[project.slug])).status_code == 405


def test_it_requires_expert(client, project):
    viewer = add_member(project, Role.VIEWER)
    client.login(username=viewer.username, password=PASSWORD)
    item = make_review_item(project)
    assert client.get(queue_url(project)).status_code == 403
    assert client.post(decide_url(project, item), {"action": "approve"}).status_code == 403
    assert not Review.objects.exists()


def test_it_hides_the_project_from_outsiders(client, project):
    client.login(username=make_user().username, password=PASSWORD)
    item = make_review_item(project)
    assert client.get(queue_url(project)).status_code == 404
    assert client.post(decide_url(project, item), {"action": "approve"}).status_code == 404


def test_it_hides_other_projects_items(client, project, expert):
    other = make_project("Other")
    foreign = make_review_item(other)
    assert client.post(decide_url(project, foreign), {"action": "approve"}).status_code == 404
    assert not Review.objects.exists()


def test_it_requires_login(client, project):
    response = client.get(queue_url(project))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_decide_and_next_use_a_bounded_number_of_queries(client, project, expert,
                                                         django_assert_max_num_queries):
    items = [make_review_item(project, priority=p / 10) for p in range(10)]
    client.get(queue_url(project))
    ordered = sorted(items, key=lambda i: -i.priority)
    # Warm the items-left cache like a running session would.
    client.post(decide_url(project, ordered[0]), {"action": "approve"}, **HTMX)
    with django_assert_max_num_queries(24):
        client.post(decide_url(project, ordered[1]), {"action": "approve"}, **HTMX)
    for item in ordered[2:5]:
        make_review_item(project)  # more rows must not mean more queries
        with django_assert_max_num_queries(24):
            client.post(decide_url(project, item), {"action": "approve"}, **HTMX)


def test_the_nav_links_review_for_experts(client, project, expert):
    response = client.get(reverse("annotator:project_detail", args=[project.slug]))
    assert queue_url(project).encode() in response.content
    assert b'id="start-reviewing"' in response.content
    assert reverse("annotator:adjudication_list", args=[project.slug]).encode() not in response.content


def test_stats_page_shows_progress_and_agreement(client, project, expert):
    item = make_review_item(project)
    client.post(decide_url(project, item), {"action": "approve", "client_ms": "4000"})
    response = client.get(reverse("annotator:review_stats", args=[project.slug]))
    assert response.status_code == 200
    assert b'id="critic-agreement">100%' in response.content
    assert b"4.0 s" in response.content
    assert client.post(reverse("annotator:review_stats", args=[project.slug])).status_code == 405
