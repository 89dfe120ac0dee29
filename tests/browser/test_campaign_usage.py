"""The campaign page shows what each role's model spent, in a real browser: the table of
models and tokens a finished campaign recorded (here the in-process learner's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.models import Role
from annotator.services.campaign_runner import campaign_execute
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_campaign, make_project

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_campaign_page_lists_the_tokens_each_model_spent(page, live_server, tiny,
                                                            tmp_path: Path):
    project = make_project("Tokens")
    campaign = make_campaign(project, strategies=["direct"], budget=2, seed=1)
    campaign_execute(campaign=campaign)
    campaign.refresh_from_db()
    spent = campaign.usage["learner"]
    login(page, live_server, add_member(project, Role.VIEWER), PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/campaigns/{campaign.pk}/")
    table = page.locator("#campaign-usage")
    assert table.is_visible()
    assert table.locator("caption").inner_text() == "Models and tokens spent"
    cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == "Learner" and cells[1].startswith("in-process")
    assert cells[2:] == [str(spent["requests"]), str(spent["prompt_tokens"]),
                         str(spent["completion_tokens"])]
    page.screenshot(path=str(tmp_path / "campaign-usage.png"), full_page=True)
