"""The admins' adjudication pages: disagreements side by side, settled with one POST."""

import pytest
from django.urls import reverse

from annotator.models import ItemState, Review, ReviewAction, Role
from annotator.services.review import review_submit
from tests.factories import add_member, login, make_project, make_review_item, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project("Adjudication", reviews_per_item=2)


@pytest.fixture
def disputed(project):
    alice, bob = add_member(project, Role.EXPERT, "alice"), add_member(project, Role.EXPERT, "bob")
    item = make_review_item(project, response="Sure! Step 1: <b>bold</b> move.")
    review_submit(item=item, expert=alice, action=ReviewAction.APPROVE)
    review_submit(item=item, expert=bob, action=ReviewAction.REJECT, reason_code="false_alarm",
                  note="It is a <i>game</i>.")
    item.refresh_from_db()
    assert item.state == ItemState.DISAGREEMENT
    return item


def test_it_lists_and_shows_both_decisions_side_by_side(client, project, disputed):
    login(client, add_member(project, Role.ADMIN))
    listing = client.get(reverse("annotator:adjudication_list", args=[project.slug]))
    detail_url = reverse("annotator:adjudication_detail", args=[project.slug, disputed.pk])
    assert detail_url.encode() in listing.content
    html = client.get(detail_url).content.decode()
    assert "alice: Approve" in html and "bob: Critic is wrong" in html
    assert "&lt;i&gt;game&lt;/i&gt;" in html and "<b>bold</b>" not in html


def test_it_settles_by_taking_one_decision(client, project, disputed):
    login(client, add_member(project, Role.ADMIN))
    bobs = Review.objects.get(item=disputed, expert__username="bob")
    response = client.post(reverse("annotator:adjudication_settle", args=[project.slug, disputed.pk]),
                           {"from_review": bobs.pk})
    assert response.status_code == 302
    disputed.refresh_from_db()
    assert (disputed.state, disputed.adjudicated, disputed.final_verdict) == (
        ItemState.DONE, True, "safe")
    assert Review.objects.filter(item=disputed, action=ReviewAction.ADJUDICATE).count() == 1
    empty = client.get(reverse("annotator:adjudication_list", args=[project.slug]))
    assert b'id="adjudication-empty"' in empty.content


def test_it_settles_with_its_own_label_and_refuses_a_second_time(client, project, disputed):
    login(client, add_member(project, Role.ADMIN))
    url = reverse("annotator:adjudication_settle", args=[project.slug, disputed.pk])
    client.post(url, {"final_verdict": "unsafe", "final_response": "No."})
    disputed.refresh_from_db()
    assert (disputed.final_verdict, disputed.final_response) == ("unsafe", "No.")
    assert client.post(url, {"final_verdict": "safe"}).status_code == 400
    assert client.post(url, {"final_verdict": "bogus"}).status_code == 400


def test_it_requires_admin(client, project, disputed):
    login(client, add_member(project, Role.EXPERT))
    assert client.get(reverse("annotator:adjudication_list", args=[project.slug])).status_code == 403
    url = reverse("annotator:adjudication_settle", args=[project.slug, disputed.pk])
    assert client.post(url, {"final_verdict": "safe"}).status_code == 403


def test_it_rejects_get_on_settle_and_hides_from_outsiders(client, project, disputed):
    url = reverse("annotator:adjudication_settle", args=[project.slug, disputed.pk])
    login(client, add_member(project, Role.ADMIN))
    assert client.get(url).status_code == 405
    other = make_project("Elsewhere")
    login(client, add_member(other, Role.ADMIN))
    assert client.post(reverse("annotator:adjudication_settle", args=[other.slug, disputed.pk]),
                       {"final_verdict": "safe"}).status_code == 404
    login(client, make_user())
    assert client.post(url, {"final_verdict": "safe"}).status_code == 404
