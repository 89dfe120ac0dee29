"""The Data page: start an export, watch its row update, cancel, download."""

import pytest
from django.urls import reverse

from annotator.models import Export, JobStatus, Role
from annotator.services.exports import export_relative_path
from tests.factories import add_member, login, make_user

pytestmark = pytest.mark.django_db


def test_the_page_lists_exports_and_offers_the_form(client, project):
    login(client, add_member(project, Role.ADMIN))
    Export.objects.create(project=project, format="kto", filters={"category": "<b>fraud</b>"})
    response = client.get(reverse("annotator:data_home", args=[project.slug]))
    assert response.status_code == 200
    assert b"KTO (prompt/completion/label)" in response.content
    assert b"&lt;b&gt;fraud" in response.content and b"<b>fraud" not in response.content
    assert f'href="/p/{project.slug}/data/"'.encode() in response.content  # the project nav has "Data"


def test_it_starts_an_export(client, project):
    login(client, add_member(project, Role.ADMIN))
    response = client.post(reverse("annotator:export_new", args=[project.slug]),
                           {"format": "trl_preference", "include_provenance": "on",
                            "category": "fraud", "min_agreement": "0.5"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.filters == {"category": "fraud", "min_agreement": 0.5}
    assert export.include_provenance and export.status == JobStatus.QUEUED


def test_it_shows_form_errors(client, project):
    login(client, add_member(project, Role.ADMIN))
    response = client.post(reverse("annotator:export_new", args=[project.slug]),
                           {"format": "xml", "min_agreement": "7"})
    assert response.status_code == 400 and not Export.objects.exists()
    assert b"Select a valid choice" in response.content
    split = client.post(reverse("annotator:export_new", args=[project.slug]),
                        {"format": "kto", "split": "train"})
    assert split.status_code == 400 and b"snapshot exports only" in split.content


def test_the_row_polls_while_active_and_cancels(client, project):
    login(client, add_member(project, Role.ADMIN))
    export = Export.objects.create(project=project, format="kto")
    row = client.get(reverse("annotator:export_row", args=[project.slug, export.pk]),
                     headers={"HX-Request": "true"})
    assert b'hx-trigger="every 2s"' in row.content
    cancelled = client.post(reverse("annotator:export_cancel", args=[project.slug, export.pk]),
                            headers={"HX-Request": "true"})
    assert cancelled.status_code == 200 and b"Cancelled" in cancelled.content
    assert b"every 2s" not in cancelled.content
    full = client.post(reverse("annotator:export_cancel", args=[project.slug, export.pk]))
    assert full.status_code == 302


def test_download(client, project, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    login(client, add_member(project, Role.ADMIN))
    export = Export.objects.create(project=project, format="csv")
    url = reverse("annotator:export_download", args=[project.slug, export.pk])
    not_ready = client.get(url, follow=True)
    assert b"no file to download yet" in not_ready.content
    relative = export_relative_path(export=export)
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text("prompt,chosen,rejected\n")
    Export.objects.filter(pk=export.pk).update(status=JobStatus.SUCCEEDED, file_path=relative)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert 'attachment; filename="export-' in response["Content-Disposition"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXPERT])
def test_it_requires_admin(client, project, role):
    login(client, add_member(project, role))
    export = Export.objects.create(project=project, format="kto")
    assert client.get(reverse("annotator:data_home", args=[project.slug])).status_code == 403
    assert client.post(reverse("annotator:export_new", args=[project.slug]),
                       {"format": "kto"}).status_code == 403
    assert client.get(reverse("annotator:export_download",
                              args=[project.slug, export.pk])).status_code == 403
    assert not Export.objects.filter(format="kto").exclude(pk=export.pk).exists()


def test_it_hides_other_projects(client, project):
    login(client, make_user())
    export = Export.objects.create(project=project, format="kto")
    assert client.get(reverse("annotator:data_home", args=[project.slug])).status_code == 404
    assert client.get(reverse("annotator:export_row",
                              args=[project.slug, export.pk])).status_code == 404


def test_wrong_methods_are_405(client, project):
    login(client, add_member(project, Role.ADMIN))
    export = Export.objects.create(project=project, format="kto")
    assert client.post(reverse("annotator:data_home", args=[project.slug])).status_code == 405
    assert client.get(reverse("annotator:export_new", args=[project.slug])).status_code == 405
    assert client.get(reverse("annotator:export_cancel",
                              args=[project.slug, export.pk])).status_code == 405
