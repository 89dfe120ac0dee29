"""Security headers, login rate limiting and the API docs under the CSP."""

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_login_page_has_no_inline_script(client):
    body = client.get(reverse("login")).content.decode()
    assert "<script>" not in body and " on" + "click=" not in body


def test_repeated_wrong_passwords_lock_the_login_out(client, settings):
    user = make_user()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert not locked.wsgi_request.user.is_authenticated


def test_api_docs_render_offline_without_inline_script(client):
    client.force_login(make_user())
    page = client.get(reverse("api:docs"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "http://" not in body.replace("http://testserver", "") and "https://" not in body
    assert "<script>" not in body


def test_check_deploy_is_clean_with_production_settings():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "false", "ALLOW_INSECURE_SECRET_KEY": "false",
           "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
           "SECURE_SSL_REDIRECT": "true"}
    # The browser tests' fixture relaxes async safety for Playwright in this process only.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "false", "ALLOW_INSECURE_SECRET_KEY": "false", "SECRET_KEY": ""}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
