import pytest
from django.core.management import call_command

from annotator.models import LearnerVersion, Membership, Project

pytestmark = pytest.mark.django_db


def test_setup_demo_is_idempotent_and_the_users_can_log_in(client, monkeypatch, capsys):
    monkeypatch.setenv("DEMO_EXPERT_PASSWORD", "expert-pass-123")
    call_command("setup_demo")
    call_command("setup_demo")
    out = capsys.readouterr().out
    assert "expert / expert-pass-123" in out
    project = Project.objects.get(slug="demo")
    assert Membership.objects.filter(project=project).count() == 2
    assert LearnerVersion.objects.filter(project=project, status="active").count() == 1
    assert client.login(username="expert", password="expert-pass-123")
    assert client.get("/p/demo/").status_code == 200
