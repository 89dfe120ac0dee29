"""The project endpoints: my projects with my role, one project's detail."""

import pytest
from django.urls import reverse

from annotator.models import ItemState, Role
from tests.factories import PASSWORD, add_member, bearer, make_project, make_review_item, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return make_project("Alpha", guidelines="Be kind.")


def test_it_lists_my_projects_with_my_role(client, project):
    beta = make_project("Beta")
    make_project("Secret")
    user = add_member(project, Role.VIEWER)
    from annotator.services.projects import membership_set

    membership_set(project=beta, user=user, role=Role.ADMIN)
    response = client.get(reverse("api:project_list"), **bearer(user))
    assert response.status_code == 200
    roles = {p["slug"]: p["role"] for p in response.json()["results"]}
    assert roles == {"alpha": "viewer", "beta": "admin"}
    admins_only = client.get(reverse("api:project_list"), {"role": "admin"}, **bearer(user))
    assert [p["slug"] for p in admins_only.json()["results"]] == ["beta"]


def test_superusers_see_every_project_as_admin(client, project):
    root = make_user(is_superuser=True)
    results = client.get(reverse("api:project_list"), **bearer(root)).json()["results"]
    assert [(p["slug"], p["role"]) for p in results] == [("alpha", "admin")]


def test_it_rejects_an_unknown_role_filter(client, project):
    response = client.get(reverse("api:project_list"), {"role": "owner"},
                          **bearer(add_member(project, Role.VIEWER)))
    assert response.status_code == 400 and "role" in response.json()["errors"]


def test_it_pages_with_a_cursor(client):
    user = make_user()
    from annotator.services.projects import membership_set

    for n in range(3):
        membership_set(project=make_project(f"P{n}"), user=user, role=Role.EXPERT)
    first = client.get(reverse("api:project_list"), {"page_size": 2}, **bearer(user)).json()
    second = client.get(first["next"], **bearer(user)).json()
    slugs = [p["slug"] for p in first["results"] + second["results"]]
    assert sorted(slugs) == ["p0", "p1", "p2"] and second["next"] is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXPERT, Role.ADMIN])
def test_detail_shows_my_role_and_counts(client, project, role):
    make_review_item(project)
    make_review_item(project, state=ItemState.DONE)
    response = client.get(reverse("api:project_detail", args=[project.slug]),
                          **bearer(add_member(project, role)))
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == role and body["guidelines"] == "Be kind."
    assert body["items"] == {"total": 2, "pending": 1, "disagreement": 0, "curated": 1}
    assert body["active_learner"] == "base"


def test_detail_hides_other_projects(client, project):
    response = client.get(reverse("api:project_detail", args=[project.slug]), **bearer(make_user()))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such project.", "errors": {}}


def test_it_requires_authentication(client, project):
    for url in (reverse("api:project_list"), reverse("api:project_detail", args=[project.slug])):
        response = client.get(url)
        assert response.status_code == 401 and response.json()["errors"] == {}


def test_session_authentication_works_for_the_browser(client, project):
    user = add_member(project, Role.EXPERT)
    assert client.login(username=user.username, password=PASSWORD)
    assert client.get(reverse("api:project_detail", args=[project.slug])).json()["role"] == "expert"


def test_wrong_methods_are_405(client, project):
    headers = bearer(add_member(project, Role.ADMIN))
    assert client.post(reverse("api:project_list"), **headers).status_code == 405
    response = client.delete(reverse("api:project_detail", args=[project.slug]), **headers)
    assert response.status_code == 405 and "DELETE" in response.json()["detail"]


def test_schema_and_docs_render_offline(client, project):
    user = add_member(project, Role.VIEWER)
    assert client.login(username=user.username, password=PASSWORD)
    schema = client.get(reverse("api:schema"), {"format": "json"})
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/projects/", "/api/projects/{slug}/exports/", "/api/tokens/",
                 "/api/projects/{slug}/imports/"):
        assert path in text
    assert "tokenAuth" in text
    docs = client.get(reverse("api:docs"))
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html.lower()
    # Everything comes from our own static files: no CDN, no external URL to fetch.
    import re

    external = re.findall(r'(?:src|href)=["\'](https?://[^"\']+)', html)
    assert external == []
    # Swagger UI's init script: no validator badge fetched from validator.swagger.io.
    script = client.get(reverse("api:docs"), {"script": ""}).content.decode()
    assert '"validatorUrl": null' in script and "://" not in script
