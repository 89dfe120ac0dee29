"""An expert reviews ten items with the keyboard only, in a real browser; model output stays text."""

from __future__ import annotations

import pytest

from annotator.models import Review, Role
from tests.browser.conftest import login
from tests.factories import PASSWORD, add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db(transaction=True)

XSS = "Here you go: <script>alert(1)</script> <img src=x onerror=alert(1)> Step 1: done."


def current(page, item) -> None:
    """Wait until htmx has swapped in this item."""
    page.wait_for_selector(f'#review-item[data-item-id="{item.pk}"]')


def test_an_expert_reviews_ten_items_with_the_keyboard(page, page_dialogs, live_server):
    project = make_project("Keyboard", guidelines="# House rules\nFlag real harm only.")
    expert = add_member(project, Role.EXPERT)
    # Ten items with falling priority, so the queue order is known; the fourth one is hostile.
    items = [make_review_item(project, priority=1 - i / 10,
                              response=XSS if i == 3 else f"Sure! Step 1: answer {i}.")
             for i in range(10)]
    login(page, live_server, expert, PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/review/")
    first_url = page.url

    # 1. Approve.
    current(page, items[0])
    page.keyboard.press("a")
    # 2. Edit: E focuses the revision, typing there fires no keys, Ctrl+Enter saves.
    current(page, items[1])
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("Ask a locksmith; sure, always.")  # "a", "s", "u" must not fire here
    page.keyboard.press("Control+Enter")
    # 3. The critic is wrong, quick reason 1.
    current(page, items[2])
    page.keyboard.press("r")
    page.keyboard.press("1")
    # 4. The hostile response is shown as text and runs nothing; then skip it.
    current(page, items[3])
    assert "<script>alert(1)</script>" in page.inner_text("#response-text")
    assert "<img src=x onerror=alert(1)>" in page.inner_text("#response-text")
    assert page.locator("#response-text script, #response-text img").count() == 0
    page.keyboard.press("s")
    # 5. Approve, then undo it: the same item comes back.
    current(page, items[4])
    page.keyboard.press("a")
    current(page, items[5])
    page.keyboard.press("u")
    current(page, items[4])
    # ... and reject it with a note (R, N, type, Ctrl+Enter).
    page.keyboard.press("r")
    page.keyboard.press("n")
    page.keyboard.type("Read in context it is fine")
    page.keyboard.press("Control+Enter")
    # 6-10. Guidelines and help are one key away; then approve, approve, edit, reject 4, skip.
    current(page, items[5])
    page.keyboard.press("g")
    page.wait_for_selector("#guidelines-body h1:has-text('House rules')")
    page.keyboard.press("g")
    page.keyboard.press("?")
    assert page.is_visible("#review-help")
    page.keyboard.press("?")
    page.keyboard.press("a")
    current(page, items[6])
    page.keyboard.press("a")
    current(page, items[7])
    page.keyboard.press("e")
    page.keyboard.type(" Please stay safe.")
    page.keyboard.press("Control+Enter")
    current(page, items[8])
    page.keyboard.press("r")
    page.keyboard.press("4")
    current(page, items[9])
    page.keyboard.press("s")
    page.wait_for_selector("#queue-empty")

    assert page.url == first_url  # htmx swapped every item; the page never reloaded
    assert page_dialogs == []
    decisions = [(r.item_id, r.action, r.reason_code, r.note)
                 for r in Review.objects.filter(expert=expert).order_by("id")]
    ids = [item.pk for item in items]
    assert decisions == [
        (ids[0], "approve", "", ""),
        (ids[1], "edit", "", ""),
        (ids[2], "reject", "false_alarm", ""),
        (ids[3], "skip", "", ""),
        (ids[4], "approve", "", ""),
        (ids[4], "undo", "", ""),
        (ids[4], "reject", "other", "Read in context it is fine"),
        (ids[5], "approve", "", ""),
        (ids[6], "approve", "", ""),
        (ids[7], "edit", "", ""),
        (ids[8], "reject", "guidelines", ""),
        (ids[9], "skip", "", ""),
    ]
    edited = Review.objects.get(item_id=ids[1], action="edit")
    assert edited.corrected_response == "Ask a locksmith; sure, always."
    assert Review.objects.get(item_id=ids[7]).corrected_response.endswith("Please stay safe.")
    assert all(0 < r.seconds_spent < 60 for r in Review.objects.exclude(action="undo"))
