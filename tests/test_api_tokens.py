"""Personal API tokens: create (key shown once), list, revoke; Bearer/Token authentication."""

import hashlib

import pytest
from django.urls import reverse

from annotator.models import ApiToken, Role
from annotator.services.tokens import token_create, token_revoke
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


def test_only_a_hash_of_the_key_is_stored(user):
    new = token_create(user=user, name="laptop")
    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(new.key.encode()).hexdigest()
    assert new.key not in str(ApiToken.objects.values().get())
    assert new.key.startswith(token.prefix)


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_both_header_keywords_authenticate(client, user, keyword):
    project = make_project()
    from annotator.services.projects import membership_set

    membership_set(project=project, user=user, role=Role.VIEWER)
    key = token_create(user=user, name="ci").key
    response = client.get(reverse("api:project_list"), HTTP_AUTHORIZATION=f"{keyword} {key}")
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer sa_wrong", "Bearer", "Bearer a b", "Token \u00e9"])
def test_bad_keys_are_401(client, header):
    response = client.get(reverse("api:project_list"), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["detail"]


def test_revoked_tokens_and_inactive_users_are_401(client, user):
    new = token_create(user=user, name="old")
    token_revoke(token=new.token)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {new.key}"}
    assert client.get(reverse("api:project_list"), **headers).status_code == 401
    fresh = token_create(user=user, name="new")
    user.is_active = False
    user.save()
    assert client.get(reverse("api:project_list"),
                      HTTP_AUTHORIZATION=f"Bearer {fresh.key}").status_code == 401


def test_it_creates_a_token_and_shows_the_key_once(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    response = client.post(reverse("api:token_list"), {"name": "notebook"},
                           content_type="application/json")
    assert response.status_code == 201
    key = response.json()["key"]
    listed = client.get(reverse("api:token_list")).json()["results"]
    assert [t["name"] for t in listed] == ["notebook"] and "key" not in listed[0]
    client.logout()
    assert client.get(reverse("api:token_list"),
                      HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_create_needs_a_name(client, user):
    key = token_create(user=user, name="a").key
    response = client.post(reverse("api:token_list"), {"name": ""}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400 and "name" in response.json()["errors"]


def test_it_revokes_my_token_only(client, user):
    mine = token_create(user=user, name="mine")
    theirs = token_create(user=make_user(), name="theirs")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='admin').key}"}
    response = client.delete(reverse("api:token_revoke", args=[mine.token.pk]), **headers)
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert client.delete(reverse("api:token_revoke", args=[theirs.token.pk]),
                         **headers).status_code == 404
    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None


def test_tokens_need_authentication(client, user):
    assert client.get(reverse("api:token_list")).status_code == 401
    assert client.post(reverse("api:token_list"), {"name": "x"}).status_code == 401
    token = token_create(user=user, name="x").token
    assert client.delete(reverse("api:token_revoke", args=[token.pk])).status_code == 401


def test_wrong_methods_are_405(client, user):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='x').key}"}
    assert client.put(reverse("api:token_list"), **headers).status_code == 405
    assert client.get(reverse("api:token_revoke", args=[1]), **headers).status_code == 405


def test_session_writes_need_csrf(user):
    """A browser session cannot be ridden by another site: without the CSRF token, 403."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username=user.username, password=PASSWORD)
    response = browser.post(reverse("api:token_list"), {"name": "x"},
                            content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# -- the token page -------------------------------------------------------------------------------


def test_token_page_creates_shows_key_once_and_revokes(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    url = reverse("annotator:tokens")
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "my laptop"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    assert b"my laptop" in response.content and token.prefix.encode() in response.content
    page = client.get(url)
    assert b"my laptop" in page.content
    revoke = client.post(reverse("annotator:token_revoke", args=[token.pk]))
    assert revoke.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_token_page_refuses_other_users_tokens_and_bad_input(client, user):
    other = token_create(user=make_user(), name="theirs").token
    assert client.login(username=user.username, password=PASSWORD)
    assert client.post(reverse("annotator:token_revoke", args=[other.pk])).status_code == 404
    response = client.post(reverse("annotator:tokens"), {"name": ""})
    assert response.status_code == 400 and not ApiToken.objects.filter(user=user).exists()
    assert client.get(reverse("annotator:token_revoke", args=[other.pk])).status_code == 405


def test_token_page_requires_login(client):
    response = client.get(reverse("annotator:tokens"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_project_admin_role_is_irrelevant_to_tokens(client):
    project = make_project()
    viewer = add_member(project, Role.VIEWER)
    assert client.login(username=viewer.username, password=PASSWORD)
    assert client.get(reverse("annotator:tokens")).status_code == 200
