"""The critic's pages in a real browser: the Agreement page draws the reliability diagram and
the learning curve (uPlot, under the strict CSP), the project page shows the auto-accept
threshold and saves the target precision through htmx.

Set SCREENSHOT_DIR to keep full-page screenshots of both pages.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from annotator.models import Role
from annotator.services.critic import critic_head_retrain
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, plant_audits, review_real_answers

pytestmark = pytest.mark.django_db(transaction=True)


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_the_critic_pages_draw_their_charts_and_save_the_target(page, live_server):
    project = make_project("Critic demo", description="Real labelled answers, reviewed.")
    expert = add_member(project, Role.EXPERT)
    admin = add_member(project, Role.ADMIN)
    review_real_answers(project, expert, 40)
    critic_head_retrain(project=project)
    # 60 audits right at the top, a few wrong lower down: a threshold, and how to lower it.
    plant_audits(project, [(0.96 + 0.01 * (k % 4), True) for k in range(60)]
                 + [(0.9, k >= 1) for k in range(20)])
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    login(page, live_server, admin, PASSWORD)

    page.goto(reverse("annotator:review_stats", args=[project.slug]))
    # Both charts drawn: uPlot puts a canvas in each.
    page.wait_for_selector("#calibration [data-chart='reliability'] canvas")
    assert page.locator("#calibration [data-chart='learning'] canvas").count() == 1
    assert page.locator("#calibration-ece").inner_text() != "—"
    screenshot(page, "agreement.png")
    # The refresh link swaps the card through htmx and the charts come back.
    page.click("#calibration a.refresh")
    page.wait_for_selector("#calibration [data-chart='reliability'] canvas")

    page.goto(reverse("annotator:project_detail", args=[project.slug]))
    threshold = page.locator("#auto-accept-threshold").inner_text()
    assert "96.0% or more are curated" in threshold
    assert "more audit" in page.locator("#auto-accept-lower").inner_text()
    screenshot(page, "project.png")
    page.fill("#id_target_precision", "0.9")
    page.click("#project-settings button[type=submit]")
    page.locator("#auto-accept-threshold", has_text="target 90.0%").wait_for()
    assert "90.0% or more are curated" in page.locator("#auto-accept-threshold").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e or "uPlot" in e], errors
