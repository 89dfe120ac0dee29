"""The Risks page in a real browser, on a real discovery (the planted set of
tests/test_risk_discovery.py imported, judged and clustered by the worker): the map draws with
uPlot under the strict CSP without a script error, Dismiss swaps the card through htmx, and a
refused Adopt shows its reason in the card.

Set SCREENSHOT_DIR to keep a full-page screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annotator.models import RiskDecision, Role
from annotator.services.risks import risk_discovery_start
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, run_worker
from tests.test_risk_discovery import import_and_judge

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_map_draws_and_the_cards_decide(page, live_server, tiny, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    project = make_project("Risk demo")
    admin = add_member(project, Role.ADMIN)
    import_and_judge(project, admin)
    # Discovery again after the experts' corrections (as an admin's button would).
    discovery = risk_discovery_start(project=project, user=admin)
    run_worker()
    discovery.refresh_from_db()
    clusters = list(discovery.risks.order_by("rank"))
    assert len(clusters) >= 2

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The refused Adopt's 400 (and a missing favicon) are logged as failed loads: not errors.
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and errors.append(message.text))
    login(page, live_server, admin, PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/risks/")
    page.wait_for_selector("#risk-map .uplot canvas")
    # One legend entry per coloured cluster, plus the grey ones.
    assert page.locator("#risk-map .u-legend .u-series").count() >= len(clusters) + 1
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / "risks.png"), full_page=True)

    first, second = (page.locator(f"#risk-{risk.pk}") for risk in clusters[:2])
    first.get_by_role("button", name="Dismiss").click()
    page.wait_for_selector(f"#risk-{clusters[0].pk} .decision")
    assert "Dismissed" in page.locator(f"#risk-{clusters[0].pk} .decision").inner_text()
    second.get_by_label("New category").fill("fraud")
    second.get_by_role("button", name="Adopt").click()
    page.wait_for_selector(f"#risk-{clusters[1].pk} p.error")
    assert "exists already" in page.locator(f"#risk-{clusters[1].pk} p.error").inner_text()
    assert page.locator(f"#risk-{clusters[1].pk} input[name=category]").input_value() == "fraud"
    assert errors == []
    assert list(RiskDecision.objects.values_list("action", flat=True)) == ["dismiss"]
