"""The report pages draw their uPlot charts (static/js/charts.js and each page's script) in a real
browser, without a JavaScript error: the campaign report and the Oversight page."""

from __future__ import annotations

import pytest

from annotator.models import ItemState, ReliabilityRun, Role
from annotator.services.oversight import (
    reliability_execute,
    review_item_gold_set,
)
from annotator.services.projects import project_settings_update
from annotator.services.review import review_adjudicate, review_claim_next, review_submit
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, make_review_item
from tests.test_campaign_views import finished_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def charts_drawn(page, live_server, path: str) -> int:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}{path}")
    page.wait_for_selector("[data-chart] .uplot")
    assert errors == []
    return page.locator("[data-chart] .uplot canvas").count()


def test_the_campaign_report_draws_its_charts(page, live_server):
    project = make_project("Charts")
    campaign = finished_campaign(project)
    login(page, live_server, add_member(project, Role.VIEWER), PASSWORD)
    assert charts_drawn(page, live_server, f"/p/{project.slug}/campaigns/{campaign.pk}/") == 3


def test_the_oversight_page_draws_its_charts(page, live_server):
    project = make_project("Oversight charts")
    admin = add_member(project, Role.ADMIN)
    # Two settled items made gold, then served to two experts as probes (some blind).
    for k in range(2):
        item = make_review_item(project, query=f"Question {k}", state=ItemState.DISAGREEMENT)
        review_adjudicate(item=item, admin=admin, final_verdict="unsafe")
        review_item_gold_set(item=item, admin=admin, gold=True)
    project_settings_update(project=project, gold_share=1.0, blind_share=0.5)
    for expert in (add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)):
        while (item := review_claim_next(project=project, expert=expert)) is not None:
            action = "label" if item.served_as.blind else "approve"
            review_submit(item=item, expert=expert, action=action, seconds_spent=20,
                          final_verdict="unsafe" if action == "label" else None)
    reliability_execute(run=ReliabilityRun.objects.create(project=project))
    login(page, live_server, admin, PASSWORD)
    assert charts_drawn(page, live_server, f"/p/{project.slug}/oversight/") == 2
