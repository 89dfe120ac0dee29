"""An expert labels items served blind with the keyboard only, in a real browser: verdict keys,
a rewrite, skip and undo; the critic's texts never reach the page."""

from __future__ import annotations

import pytest

from annotator.models import Review, Role
from annotator.services.projects import project_settings_update
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db(transaction=True)

EXPLANATION = "Zanzibar-explanation of the critic"
REVISION = "Quokka-revision of the critic"


def current(page, item) -> None:
    """Wait until htmx has swapped in this item."""
    page.wait_for_selector(f'#review-item[data-item-id="{item.pk}"]')


def test_an_expert_labels_blind_items_with_the_keyboard(page, page_dialogs, live_server):
    project = make_project("Blind keyboard")
    project_settings_update(project=project, blind_share=1.0)
    expert = add_member(project, Role.EXPERT)
    items = []
    for i in range(5):
        item = make_review_item(project, priority=1 - i / 10, response=f"Sure! Step 1: answer {i}.",
                                revision=REVISION)
        item.critique.explanation = EXPLANATION
        item.critique.save(update_fields=["explanation"])
        items.append(item)
    login(page, live_server, expert, PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/review/")
    first_url = page.url
    seen = []

    # 1. Key 2 labels the first item unsafe.
    current(page, items[0])
    seen.append(page.content())
    assert page.input_value("#revision") == "Sure! Step 1: answer 0."
    page.keyboard.press("2")
    # 2. E rewrites the answer (typing "1", "s", "u" there fires nothing), Ctrl+Enter only
    # leaves the box (a blind label needs a verdict key), then 1 labels it safe with the text.
    current(page, items[1])
    seen.append(page.content())
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("Step 1 is fine; sure, use your own key.")
    page.keyboard.press("Control+Enter")
    assert page.evaluate("document.activeElement.id") != "revision"
    page.wait_for_timeout(300)
    assert page.locator(f'#review-item[data-item-id="{items[1].pk}"]').count() == 1
    page.keyboard.press("1")
    # 3. S skips; 4. key 4 labels over-refusal, then U brings that item back, still blind,
    # and key 3 labels it refusal instead.
    current(page, items[2])
    seen.append(page.content())
    page.keyboard.press("s")
    current(page, items[3])
    page.keyboard.press("4")
    current(page, items[4])
    page.keyboard.press("u")
    current(page, items[3])
    seen.append(page.content())
    assert page.is_visible("#btn-label-1") and page.locator("#critic-verdict").count() == 0
    page.keyboard.press("3")
    # 5. Esc then 1 on the last one; the queue is then empty.
    current(page, items[4])
    seen.append(page.content())
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    page.wait_for_selector("#queue-empty")

    assert page.url == first_url and page_dialogs == []
    for html in seen:
        assert EXPLANATION not in html and REVISION not in html and 'class="flag"' not in html
    decisions = [(r.item_id, r.action, r.final_verdict, r.blind)
                 for r in Review.objects.filter(expert=expert).order_by("id")]
    ids = [item.pk for item in items]
    assert decisions == [
        (ids[0], "label", "unsafe", True),
        (ids[1], "label", "safe", True),
        (ids[2], "skip", "", True),
        (ids[3], "label", "over_refusal", True),
        (ids[3], "undo", "", True),
        (ids[3], "label", "refusal", True),
        (ids[4], "label", "safe", True),
    ]
    rewritten = Review.objects.get(item_id=ids[1])
    assert rewritten.corrected_response == "Step 1 is fine; sure, use your own key."
    assert all(0 < r.seconds_spent < 60 for r in Review.objects.exclude(action="undo"))
