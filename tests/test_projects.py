"""Project pages and the role checks every view relies on."""

import pytest
from django.urls import reverse

from annotator.models import Role
from tests.factories import PASSWORD, add_member, login, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project("Alpha", guidelines="# Be kind\n<script>alert(1)</script>[x](javascript:alert(1))")


def test_home_sends_anonymous_users_to_the_login_page(client):
    response = client.get("/", follow=True)
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_login_with_right_and_wrong_password(client, project):
    user = add_member(project, Role.EXPERT)
    bad = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert b"didn't match" in bad.content
    good = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert good.status_code == 302 and good["Location"] == reverse("annotator:project_list")


def test_project_list_shows_only_my_projects(client, project):
    other = make_project("Secret Beta")
    user = add_member(project, Role.VIEWER)
    login(client, user)
    response = client.get(reverse("annotator:project_list"))
    assert b"Alpha" in response.content and b"Secret Beta" not in response.content
    assert other.slug


def test_project_detail_requires_login(client, project):
    url = reverse("annotator:project_detail", args=[project.slug])
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_project_detail_is_404_for_outsiders(client, project):
    login(client, make_user())
    assert client.get(reverse("annotator:project_detail", args=[project.slug])).status_code == 404


def test_project_detail_is_404_for_missing_projects(client, project):
    login(client, add_member(project, Role.ADMIN))
    assert client.get(reverse("annotator:project_detail", args=["nope"])).status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXPERT, Role.ADMIN])
def test_project_detail_for_each_role(client, project, role):
    login(client, add_member(project, role))
    response = client.get(reverse("annotator:project_detail", args=[project.slug]))
    assert response.status_code == 200
    assert role.label.encode() in response.content


def test_project_detail_rejects_post(client, project):
    login(client, add_member(project, Role.ADMIN))
    assert client.post(reverse("annotator:project_detail", args=[project.slug])).status_code == 405


def test_guidelines_are_sanitised_markdown(client, project):
    login(client, add_member(project, Role.EXPERT))
    response = client.get(reverse("annotator:project_guidelines", args=[project.slug]))
    body = response.content.decode()
    assert "<h1>Be kind</h1>" in body
    assert "<script>alert(1)</script>" not in body
    assert "javascript:" not in body


def test_guidelines_htmx_returns_only_the_fragment(client, project):
    login(client, add_member(project, Role.EXPERT))
    response = client.get(reverse("annotator:project_guidelines", args=[project.slug]),
                          HTTP_HX_REQUEST="true")
    assert response.content.decode().lstrip().startswith('<article class="guidelines')


def test_viewer_role_is_below_expert(project):
    from django.core.exceptions import PermissionDenied

    from annotator.access import project_access

    viewer = add_member(project, Role.VIEWER)
    assert project_access(viewer, project.slug).role == Role.VIEWER
    with pytest.raises(PermissionDenied):
        project_access(viewer, project.slug, Role.EXPERT)


def test_health_page_is_for_staff_only(client, project):
    login(client, add_member(project, Role.ADMIN))
    assert client.get(reverse("annotator:health")).status_code == 302  # to the admin login
    staff = make_user(is_staff=True)
    login(client, staff)
    assert client.get(reverse("annotator:health")).status_code == 200
    assert client.delete(reverse("annotator:health")).status_code == 405
