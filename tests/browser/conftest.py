"""Real-browser fixtures: Debian's chromium driven by Playwright (sync API) against live_server.

Reusable by any browser test: `page` is a fresh browser context's page (its own cookies and
storage) that records every JavaScript dialog in `page_dialogs`; `login(page, live_server, user)`
logs in through the real login form.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run inside
# one unless told it is safe (the test process is single-threaded apart from the live server).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the session (each test gets a fresh context)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium "
                    "(apt-get install chromium); browser tests need it.")
    from django.urls import get_resolver
    from playwright.sync_api import sync_playwright

    # Import every view module now: some pull in torch, and a first request that spends
    # ~15 s importing would hit the browser's navigation timeout.
    get_resolver().url_patterns  # noqa: B018 (the attribute access imports them)

    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary user-data dir, removed on close.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def _plain_http_cookies(settings):
    # live_server speaks plain HTTP; secure cookies would never be sent back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def page_dialogs() -> list[str]:
    return []


@pytest.fixture
def page(browser, live_server, _plain_http_cookies, page_dialogs):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()

    def record(dialog) -> None:
        page_dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", record)
    yield page
    context.close()


def login(page, live_server, user, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
