"""Auto-accept with a guarantee: the threshold the audits support, on the page and in the API,
and the target precision admins set."""

from __future__ import annotations

import pytest
from django.urls import reverse
from scipy.stats import beta

from annotator.models import ItemState, Role
from annotator.services.review_items import review_items_create
from tests.factories import bearer, login, login_as, make_review_item, plant_audits

pytestmark = pytest.mark.django_db


def clopper_pearson_threshold(outcomes, target: float) -> tuple[float | None, float | None]:
    """The rule written out with scipy: the lowest audited confidence t at which the one-sided
    95% Clopper-Pearson lower bound on the precision of audits at or above t meets the target."""
    best = (None, None)
    for t in sorted({c for c, _ in outcomes}, reverse=True):
        above = [right for c, right in outcomes if c >= t]
        k, n = sum(above), len(above)
        bound = beta.ppf(0.05, k, n - k + 1) if k else 0.0
        if bound >= target:
            best = (t, bound)
    return best


# 100 audits: 60 at 0.97-0.99 all right, 25 at 0.9 with 2 wrong, 15 at 0.7 with 5 wrong.
PLANTED = ([(0.97 + 0.01 * (k % 3), True) for k in range(60)]
           + [(0.9, k >= 2) for k in range(25)] + [(0.7, k >= 5) for k in range(15)])


def test_planted_audits_give_the_threshold_the_clopper_pearson_math_gives(client, project, api):
    plant_audits(project, PLANTED)
    expected, bound = clopper_pearson_threshold(PLANTED, 0.95)
    assert expected == 0.97  # 60/60 clears 0.95; adding the 0.9 band (83/85) does not
    viewer = login_as(client, project, Role.VIEWER)
    data = api.get(reverse("api:project_detail", args=[project.slug]), **bearer(viewer)).json()
    auto = data["auto_accept"]
    assert auto["threshold"] == expected and auto["lower_bound"] == pytest.approx(bound)
    assert (auto["audits"], auto["audits_above"], auto["correct_above"]) == (100, 60, 60)
    # A looser target admits the 0.9 band: the math again, not a hand-picked number.
    expected_90, _ = clopper_pearson_threshold(PLANTED, 0.9)
    assert expected_90 == 0.9
    project.target_precision = 0.9
    project.save()
    data = api.get(reverse("api:project_detail", args=[project.slug]), **bearer(viewer)).json()
    assert data["auto_accept"]["threshold"] == expected_90
    # The project page shows the threshold and its bound.
    page = client.get(reverse("annotator:project_detail", args=[project.slug])).content.decode()
    assert "90.0%</strong> or more are curated" in page
    assert f"at least <strong>{100 * data['auto_accept']['lower_bound']:.1f}%</strong>" in page


def test_without_enough_audits_nothing_is_auto_accepted_and_the_page_says_how_many_more(
        client, project):
    # 30 right audits at 0.9: 0.05 ** (1/30) = 0.905 < 0.95, so no threshold yet.
    outcomes = [(0.9, True)] * 30
    plant_audits(project, outcomes)
    assert clopper_pearson_threshold(outcomes, 0.95) == (None, None)
    more = next(m for m in range(1, 200) if beta.ppf(0.05, 30 + m, 1) >= 0.95)
    login_as(client, project, Role.VIEWER)
    page = client.get(reverse("annotator:project_detail", args=[project.slug]))
    assert page.context["auto_accept"].threshold is None
    assert page.context["auto_accept"].more_audits == more == 29
    html = page.content.decode()
    assert "Nothing is auto-accepted yet" in html
    assert f"{more} more audits, all judged right, at confidence\n    90.0% or more would set a threshold" in html
    # The threshold the campaign runner passes is then None: nothing is curated without a
    # human, however confident the critic, and every new item is audited.
    fresh = [make_review_item(project, query=f"sure {k}", confidence=0.999).critique
             for k in range(5)]
    for critique in fresh:
        critique.review_item.delete()
    threshold = page.context["auto_accept"].threshold
    items = review_items_create(project=project, critiques=fresh, seed=1, threshold=threshold)
    assert [item.state for item in items] == [ItemState.PENDING] * 5
    assert all(item.is_audit for item in items)


def test_only_audits_with_a_final_expert_verdict_count(project):
    from annotator.selectors.critic import auto_accept_status

    plant_audits(project, [(0.99, True)] * 59)  # 0.05 ** (1/59) = 0.9505: just enough
    assert auto_accept_status(project=project).threshold == 0.99
    # Unaudited curated items, pending audits and auto-accepted items do not count.
    for k in range(5):
        item = make_review_item(project, query=f"not audited {k}", confidence=0.99,
                                state=ItemState.DONE)
        item.final_verdict = "safe"
        item.save()
        pending = make_review_item(project, query=f"pending audit {k}", confidence=0.99)
        pending.is_audit = True
        pending.save()
    assert auto_accept_status(project=project).audits == 59
    plant_audits(project, [(0.99, False)])  # one wrong audit breaks it
    assert auto_accept_status(project=project).threshold is None


# -- the settings form on the project page ------------------------------------------------------


def settings_url(project) -> str:
    return reverse("annotator:project_settings", args=[project.slug])


def test_admins_set_the_target_precision_on_the_project_page(client, project):
    login_as(client, project, Role.ADMIN)
    page = client.get(reverse("annotator:project_detail", args=[project.slug]))
    assert b'id="project-settings"' in page.content and b'name="target_precision"' in page.content
    response = client.post(settings_url(project), {"target_precision": "0.9", "audit_rate": "0.2"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.target_precision, project.audit_rate) == (0.9, 0.2)
    assert b"Settings saved." in client.get(response["Location"]).content


def test_the_settings_form_swaps_the_critic_card_with_htmx(client, project):
    login_as(client, project, Role.ADMIN)
    response = client.post(settings_url(project), {"target_precision": "0.99", "audit_rate": "0.1"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="critic-card">')
    assert "<html" not in html and "target 99.0%" not in html  # no threshold sentence yet
    assert 'value="0.99"' in html
    project.refresh_from_db()
    assert project.target_precision == 0.99


@pytest.mark.parametrize("htmx", [False, True])
def test_bad_settings_change_nothing_and_say_why(client, project, htmx):
    login_as(client, project, Role.ADMIN)
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(settings_url(project), {"target_precision": "1.5", "audit_rate": "0.5"},
                           **extra)
    assert response.status_code == 400
    assert b"less than or equal to 0.999" in response.content
    assert (b"<html" in response.content) is not htmx
    project.refresh_from_db()
    assert (project.target_precision, project.audit_rate) == (0.95, 0.1)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EXPERT])
def test_only_admins_change_settings(client, project, role):
    login_as(client, project, role)
    assert client.post(settings_url(project), {"target_precision": "0.9"}).status_code == 403
    page = client.get(reverse("annotator:project_detail", args=[project.slug]))
    assert b'id="project-settings"' not in page.content


def test_settings_take_only_posts(client, project, admin):
    login(client, admin)
    assert client.get(settings_url(project)).status_code == 405


# -- the same settings through the API ----------------------------------------------------------


def test_the_api_changes_the_target_precision(api, project, admin, expert):
    url = reverse("api:project_detail", args=[project.slug])
    response = api.patch(url, {"target_precision": 0.9}, format="json", **bearer(admin))
    assert response.status_code == 200
    assert response.json()["target_precision"] == 0.9 and response.json()["audit_rate"] == 0.1
    project.refresh_from_db()
    assert project.target_precision == 0.9
    assert api.patch(url, {"target_precision": 0.8}, format="json",
                     **bearer(expert)).status_code == 403
    bad = api.patch(url, {"target_precision": 0.2, "audit_rate": 0.5}, format="json",
                    **bearer(admin))
    assert bad.status_code == 400 and "target_precision" in bad.json()["errors"]
    project.refresh_from_db()
    assert (project.target_precision, project.audit_rate) == (0.9, 0.1)
    assert api.put(url, {"target_precision": 0.9}, format="json", **bearer(admin)).status_code == 405
