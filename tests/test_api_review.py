"""The review API: next, decide, undo, critiques and reviews, with the API's error conventions."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from annotator.models import ItemState, Review, Role
from annotator.services.tokens import token_create
from tests.factories import add_member, make_project, make_review_item, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def as_user(api, user):
    api.force_authenticate(user)
    return api


def next_url(project):
    return reverse("api:review_next", args=[project.slug])


def decide_url(project, item):
    return reverse("api:review_decide", args=[project.slug, item.pk])


def test_next_returns_the_best_item_and_then_nothing(api, project):
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project, priority=0.9, response="Step 1 <script>x</script>")
    make_review_item(project, priority=0.1, state=ItemState.DONE)
    as_user(api, expert)
    body = api.get(next_url(project)).json()
    assert body["id"] == item.pk and body["critique"]["verdict"] == "unsafe"
    assert body["critique"]["response"] == "Step 1 <script>x</script>"
    assert body["critique"]["spans"][0]["text"].startswith("Step 1")
    assert api.get(next_url(project)).json()["id"] == item.pk  # idempotent until decided
    assert api.post(decide_url(project, item), {"action": "approve"}).status_code == 201
    assert api.get(next_url(project)).status_code == 204


def test_it_approves_edits_rejects_and_skips(api, project):
    expert = add_member(project, Role.EXPERT)
    items = [make_review_item(project) for _ in range(4)]
    as_user(api, expert)
    payloads = [{"action": "approve", "seconds_spent": 3},
                {"action": "edit", "corrected_response": "Ask a locksmith."},
                {"action": "reject", "reason_code": "false_alarm", "note": "fine"},
                {"action": "skip"}]
    for item, payload in zip(items, payloads):
        response = api.post(decide_url(project, item), payload, format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["action"] == payload["action"]
    assert [r.action for r in Review.objects.order_by("id")] == [
        "approve", "edit", "reject", "skip"]
    assert response.json()["item_state"] == "pending"


@pytest.mark.parametrize("payload", [
    {"action": "nope"}, {"action": "edit", "corrected_response": ""},
    {"action": "reject"}, {"action": "approve", "final_verdict": "maybe"},
    {"action": "reject", "reason_code": "other", "final_verdict": "unsafe"},
    {"action": "approve", "seconds_spent": -1},
])
def test_bad_input_is_a_400_with_a_json_body(api, project, payload):
    item = make_review_item(project)
    as_user(api, add_member(project, Role.EXPERT))
    response = api.post(decide_url(project, item), payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Review.objects.exists()


def test_a_second_decision_is_a_400(api, project):
    item = make_review_item(project)
    as_user(api, add_member(project, Role.EXPERT))
    api.post(decide_url(project, item), {"action": "approve"})
    response = api.post(decide_url(project, item), {"action": "approve"})
    assert response.status_code == 400 and "detail" in response.json()


def test_undo_records_a_new_review(api, project):
    item = make_review_item(project)
    as_user(api, add_member(project, Role.EXPERT))
    decision = api.post(decide_url(project, item), {"action": "approve"}).json()
    undo_url = reverse("api:review_undo", args=[project.slug])
    response = api.post(undo_url)
    assert response.status_code == 201
    assert response.json()["undoes_id"] == decision["id"] and response.json()["action"] == "undo"
    assert response.json()["item_state"] == "pending"
    assert api.post(undo_url).status_code == 400
    listing = api.get(reverse("api:review_list", args=[project.slug])).json()
    undone = {r["id"]: r["undone"] for r in listing["results"]}
    assert undone[decision["id"]] is True


def test_anonymous_gets_401(api, project):
    item = make_review_item(project)
    assert api.get(next_url(project)).status_code == 401
    assert api.post(decide_url(project, item), {"action": "approve"}).status_code == 401


def test_viewer_cannot_decide(api, project):
    item = make_review_item(project)
    as_user(api, add_member(project, Role.VIEWER))
    assert api.post(decide_url(project, item), {"action": "approve"}).status_code == 403
    assert api.get(next_url(project)).status_code == 403
    assert api.get(reverse("api:critique_list", args=[project.slug])).status_code == 200


def test_outsiders_and_other_projects_items_are_404(api, project):
    item = make_review_item(project)
    as_user(api, make_user())
    assert api.post(decide_url(project, item), {"action": "approve"}).status_code == 404
    other = make_project("Other API")
    as_user(api, add_member(other, Role.EXPERT))
    response = api.post(reverse("api:review_decide", args=[other.slug, item.pk]),
                        {"action": "approve"})
    assert response.status_code == 404
    assert api.get(reverse("api:critique_detail", args=[other.slug, item.critique_id])).status_code == 404


def test_wrong_methods_are_405(api, project):
    item = make_review_item(project)
    as_user(api, add_member(project, Role.EXPERT))
    assert api.get(decide_url(project, item)).status_code == 405
    assert api.post(next_url(project)).status_code == 405
    assert api.post(reverse("api:critique_list", args=[project.slug])).status_code == 405


def test_critiques_list_filters_and_pages(api, project, django_assert_max_num_queries):
    for verdict in ["unsafe", "safe", "unsafe"]:
        make_review_item(project, verdict=verdict)
    make_review_item(make_project("Hidden"))
    as_user(api, add_member(project, Role.VIEWER))
    url = reverse("api:critique_list", args=[project.slug])
    with django_assert_max_num_queries(6):
        body = api.get(url, {"verdict": "unsafe", "page_size": 1}).json()
    assert len(body["results"]) == 1 and body["next"]
    assert len(api.get(url, {"state": "pending"}).json()["results"]) == 3
    assert api.get(url, {"state": "nope"}).status_code == 400
    critique = body["results"][0]
    detail = api.get(reverse("api:critique_detail", args=[project.slug, critique["id"]])).json()
    assert detail["item_state"] == "pending"


def test_reviews_list_shows_experts_only_their_own(api, project, django_assert_max_num_queries):
    alice, bob = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    admin = add_member(project, Role.ADMIN)
    for expert in (alice, bob, alice):
        item = make_review_item(project)
        as_user(api, expert)
        api.post(decide_url(project, item), {"action": "approve"})
    url = reverse("api:review_list", args=[project.slug])
    as_user(api, bob)
    assert len(api.get(url).json()["results"]) == 1
    as_user(api, admin)
    with django_assert_max_num_queries(6):
        assert len(api.get(url).json()["results"]) == 3
    assert api.get(url, {"action": "bogus"}).status_code == 400


def test_next_and_decide_stay_at_a_handful_of_queries(api, project,
                                                    django_assert_max_num_queries):
    # The review loop's server cost is mostly ORM work per query (benchmarks/load.py). Savepoints
    # count here, as BEGIN/COMMIT do on a real server.
    expert = add_member(project, Role.EXPERT)
    first, second = make_review_item(project, priority=0.9), make_review_item(project)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=expert, name='loop').key}")
    api.get(reverse("api:project_list"))  # writes the token's last use (once a minute at most)
    # token, membership, savepoint, my open item, the best candidate, the upsert of my
    # assignment, release, the item with its critique, response and attack. PostgreSQL has no
    # database-wide write lock, so there the claim also locks the candidate and counts its
    # open assignments.
    claim_checks = 0 if connection.vendor == "sqlite" else 2
    with django_assert_max_num_queries(8 + claim_checks):
        assert api.get(next_url(project)).json()["id"] == first.pk
    # The same without the candidate and the upsert: the item I have open comes back.
    with django_assert_max_num_queries(6):
        assert api.get(next_url(project)).json()["id"] == first.pk
    # token, membership, savepoint, the item locked (looked up inside the project) with its
    # critique and response, my assignment closed, the review, the item's new state (its only
    # live decision is this one: no query for them), release. The first decision after a quiet
    # spell also schedules the critic's retrain check (one UPDATE; its task is enqueued after
    # the commit). Nothing after: a review recorded just now has no undo yet.
    with django_assert_max_num_queries(9):
        decision = api.post(decide_url(project, first), {"action": "approve"})
    assert decision.status_code == 201
    assert decision.json()["undone"] is False and decision.json()["item_state"] == "done"
    # Deciding an item never claimed still works (a stale page, a script): two queries more,
    # "did I decide it already?" and the new assignment; the retrain check is scheduled now.
    with django_assert_max_num_queries(10):
        assert api.post(decide_url(project, second), {"action": "approve"}).status_code == 201
    assert Review.objects.filter(expert=expert).count() == 2


def test_written_out_outputs_match_their_declared_fields(project):
    # The hot-path serializers write their fields out by hand; DRF's field-by-field output of
    # the same declared fields must render the same JSON, byte for byte.
    from rest_framework.renderers import JSONRenderer
    from rest_framework.serializers import Serializer

    from annotator.api.review import CritiqueOutput, ReviewItemOutput, ReviewOutput
    from annotator.models import Critique, ReviewItem
    from annotator.services.review import review_submit, review_undo

    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project, response="Step 1 <b>x</b>", severity=3, confidence=1)
    rejected = review_submit(item=item, expert=expert, action="reject",
                             reason_code="false_alarm", note="fine", seconds_spent=7)
    undo = review_undo(project=project, expert=expert)
    approved = review_submit(item=ReviewItem.objects.get(pk=item.pk), expert=expert,
                             action="approve")
    loose = Critique.objects.create(response=item.critique.response, critic_name="c",
                                    critic_version="1", verdict="safe", category="none",
                                    severity=0, confidence=0.5, spans=[{"start": "x"}],
                                    explanation="", suggested_revision="")
    item = ReviewItem.objects.select_related("critique__response__attack").get(pk=item.pk)
    listed = Review.objects.select_related("expert", "item", "undone_by").get(pk=rejected.pk)
    cases = [(ReviewItemOutput(), item), (CritiqueOutput(), item.critique),
             (CritiqueOutput(), loose), (ReviewOutput(), listed),
             (ReviewOutput(context={"just_recorded": True}), undo),
             (ReviewOutput(context={"just_recorded": True}), approved)]
    for serializer, instance in cases:
        fast = serializer.to_representation(instance)
        declared = Serializer.to_representation(serializer, instance)
        assert JSONRenderer().render(fast) == JSONRenderer().render(declared)
    assert ReviewOutput().to_representation(listed)["undone"] is True


def test_schema_documents_the_review_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    decide = schema["paths"]["/api/projects/{slug}/review/items/{id}/decide/"]["post"]
    assert decide["operationId"] == "review_decide"
    assert "201" in decide["responses"] and "400" in decide["responses"]
