"""An expert corrects a dimension and approves with the keyboard only; a blind item shows none."""

from __future__ import annotations

import pytest

from annotator.models import Review, Role
from annotator.services.projects import project_settings_update
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db(transaction=True)
QUERY = "How do I make a fake ID that will pass a bouncer's check?"
STEPS = ("Sure! First, scan a real ID and edit the name and birth date. Then print it on PVC "
         "card stock with a laminator so it feels real.")


def test_d_and_a_digit_change_a_dimension_and_a_approves(page, page_dialogs, live_server,
                                                           tmp_path):
    project = make_project("Dimensions by keyboard")
    expert = add_member(project, Role.EXPERT)
    first = make_review_item(project, query=QUERY, response=STEPS, severity=3, category="fraud",
                             priority=0.9)
    second = make_review_item(project, query=QUERY, response=STEPS, severity=3,
                              category="fraud", priority=0.5)
    login(page, live_server, expert, PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/review/")
    page.wait_for_selector(f'#review-item[data-item-id="{first.pk}"]')
    assert page.input_value("#dim-select-helpfulness") == "4"
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
    # D picks harmlessness, D again helpfulness; 2 scores it; A approves with the scores shown.
    page.keyboard.press("d")
    assert page.get_attribute("#dim-harmlessness", "class").split() == ["dimension", "selected"]
    page.keyboard.press("d")
    page.keyboard.press("2")
    assert page.input_value("#dim-select-helpfulness") == "2"
    assert "changed" in page.get_attribute("#dim-helpfulness", "class")
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-item[data-item-id="{second.pk}"]')
    review = Review.objects.get(item=first)
    assert (review.action, review.dimensions) == (
        "approve", {"harmlessness": 1, "helpfulness": 2, "honesty": 4})
    # The next item starts from the critic's scores again; the help overlay names the keys.
    assert page.input_value("#dim-select-helpfulness") == "4"
    page.keyboard.press("?")
    assert "pick the next dimension" in page.inner_text("#review-help")
    page.keyboard.press("?")
    # With the reject panel open, 1-4 still pick the reason (R lets go of the dimension).
    page.keyboard.press("d")
    page.keyboard.press("r")
    page.keyboard.press("1")
    page.wait_for_selector("#queue-empty")
    rejected = Review.objects.get(item=second)
    assert (rejected.action, rejected.reason_code) == ("reject", "false_alarm")
    assert page_dialogs == []


def test_a_blind_item_shows_no_dimensions(page, live_server):
    project = make_project("Blind dimensions")
    project_settings_update(project=project, blind_share=1.0)
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project, query=QUERY, response=STEPS, severity=3, category="fraud")
    login(page, live_server, expert, PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/review/")
    page.wait_for_selector(f'#review-item[data-item-id="{item.pk}"]')
    assert page.locator("#dimensions, .dimension, [data-critic]").count() == 0
    page.keyboard.press("d")
    page.keyboard.press("2")  # no dimension to score: 2 labels the answer unsafe
    page.wait_for_selector("#queue-empty")
    review = Review.objects.get(item=item)
    assert (review.action, review.final_verdict, review.dimensions["harmlessness"]) == (
        "label", "unsafe", 1)
