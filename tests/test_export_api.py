"""The export endpoints: create (a background job), list, status, cancel, download."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotator.models import Export, ItemState, JobStatus, Role
from tests.factories import add_member, bearer, make_project, make_review_item, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    project = make_project("Alpha")
    item = make_review_item(project, state=ItemState.DONE)
    item.final_verdict, item.final_response = "unsafe", "Ask a locksmith."
    item.save()
    return project


def create(client, project, user, body):
    return client.post(reverse("api:export_list", args=[project.slug]), data=json.dumps(body),
                       content_type="application/json", **bearer(user))


@pytest.mark.django_db(transaction=True)
def test_it_exports_in_the_background_and_downloads(client, settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    # Report progress after every row, so the job's heartbeat writes happen mid-export.
    monkeypatch.setattr("annotator.services.exports.TICK_EVERY", 1)
    monkeypatch.setattr("annotator.selectors.exports.CHUNK", 2)
    project = make_project("Beta")
    for n in range(3):
        item = make_review_item(project, state=ItemState.DONE, query=f"Lock {n}?")
        item.final_verdict, item.final_response = "unsafe", "Ask a locksmith."
        item.save()
    admin = add_member(project, Role.ADMIN)
    headers = bearer(admin)
    response = client.post(reverse("api:export_list", args=[project.slug]),
                           data={"format": "trl_preference", "filters": {"category": "illegal_activity"}},
                           content_type="application/json", **headers)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["download_url"] is None

    call_command("worker", "--batch", "--interval", "0")

    status = client.get(reverse("api:export_detail", args=[project.slug, body["id"]]), **headers)
    assert status.json()["status"] == "succeeded" and status.json()["rows"] == 3
    assert status.json()["progress"]["write"]["done"] == 3
    download = client.get(status.json()["download_url"], **headers)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["Lock 0?", "Lock 1?", "Lock 2?"]
    assert list(tmp_path.glob("exports/beta/*.tmp")) == []


def test_it_lists_with_filters_and_cursor_pages(client, project, admin):
    for fmt in ("kto", "csv", "kto"):
        Export.objects.create(project=project, format=fmt)
    Export.objects.create(project=make_project(), format="kto")  # another project's
    url = reverse("api:export_list", args=[project.slug])
    headers = bearer(admin)
    page = client.get(url, {"page_size": 2}, **headers).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = client.get(page["next"], **headers).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    kto = client.get(url, {"format": "kto"}, **headers).json()["results"]
    assert [e["format"] for e in kto] == ["kto", "kto"]
    bad = client.get(url, {"status": "nope"}, **headers)
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


@pytest.mark.parametrize("body, field", [
    ({"format": "xml"}, "format"),
    ({}, "format"),
    ({"format": "kto", "filters": {"min_agreement": 3}}, "filters"),
    ({"format": "kto", "filters": {"colour": "red"}}, "non_field_errors"),
    ({"format": "kto", "snapshot": 999}, "snapshot"),
    ({"format": "kto", "filters": {"campaign_id": 999}}, "filters"),
    ({"format": "kto", "filters": {"split": "train"}}, "filters"),
])
def test_it_rejects_bad_input_with_a_json_400(client, project, admin, body, field):
    response = create(client, project, admin, body)
    assert response.status_code == 400
    assert field in response.json()["errors"] and response.json()["detail"]
    assert not Export.objects.exists()


def test_it_rejects_malformed_json(client, project, admin):
    response = client.post(reverse("api:export_list", args=[project.slug]), data="{nope",
                           content_type="application/json", **bearer(admin))
    assert response.status_code == 400 and "JSON" in response.json()["detail"]


def test_it_requires_authentication(client, project):
    response = client.get(reverse("api:export_list", args=[project.slug]))
    assert response.status_code == 401 and response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXPERT])
def test_it_requires_admin(client, project, role):
    user = add_member(project, role)
    export = Export.objects.create(project=project, format="kto")
    headers = bearer(user)
    assert client.get(reverse("api:export_list", args=[project.slug]), **headers).status_code == 403
    assert create(client, project, user, {"format": "kto"}).status_code == 403
    for name in ("api:export_detail", "api:export_download"):
        assert client.get(reverse(name, args=[project.slug, export.pk]), **headers).status_code == 403
    assert client.post(reverse("api:export_cancel", args=[project.slug, export.pk]),
                       **headers).status_code == 403
    export.refresh_from_db()
    assert export.status == JobStatus.QUEUED


def test_it_hides_other_projects(client, project):
    outsider = make_user()
    export = Export.objects.create(project=project, format="kto")
    headers = bearer(outsider)
    assert client.get(reverse("api:export_list", args=[project.slug]), **headers).status_code == 404
    assert client.get(reverse("api:export_detail", args=[project.slug, export.pk]),
                      **headers).status_code == 404
    # An admin elsewhere cannot reach this project's export through their own project either.
    other = make_project()
    other_admin = add_member(other, Role.ADMIN)
    response = client.get(reverse("api:export_detail", args=[other.slug, export.pk]),
                          **bearer(other_admin))
    assert response.status_code == 404 and response.json()["errors"] == {}


def test_download_before_it_is_done_is_409(client, project, admin):
    export = Export.objects.create(project=project, format="kto")
    response = client.get(reverse("api:export_download", args=[project.slug, export.pk]),
                          **bearer(admin))
    assert response.status_code == 409 and "queued" in response.json()["detail"]


def test_cancel(client, project, admin):
    export = Export.objects.create(project=project, format="kto")
    url = reverse("api:export_cancel", args=[project.slug, export.pk])
    headers = bearer(admin)
    assert client.post(url, **headers).json()["status"] == "cancelled"
    assert client.post(url, **headers).status_code == 409


def test_wrong_methods_are_405(client, project, admin):
    export = Export.objects.create(project=project, format="kto", status=JobStatus.SUCCEEDED)
    headers = bearer(admin)
    assert client.delete(reverse("api:export_list", args=[project.slug]), **headers).status_code == 405
    assert client.post(reverse("api:export_detail", args=[project.slug, export.pk]),
                       **headers).status_code == 405
    assert client.get(reverse("api:export_cancel", args=[project.slug, export.pk]),
                      **headers).status_code == 405
    assert client.post(reverse("api:export_download", args=[project.slug, export.pk]),
                       **headers).status_code == 405


@pytest.mark.parametrize("body", [{"format": ["kto"]}, {"format": "kto", "filters": "all"},
                                  {"format": "kto", "include_provenance": "maybe"}, ["kto"]])
def test_odd_bodies_are_400_not_500(client, project, admin, body):
    response = create(client, project, admin, body)
    assert response.status_code == 400 and response.json()["detail"]


def test_a_forged_cursor_is_a_json_404(client, project, admin):
    response = client.get(reverse("api:export_list", args=[project.slug]), {"cursor": "garbage"},
                          **bearer(admin))
    assert response.status_code == 404 and response.json()["detail"] == "Invalid cursor"
