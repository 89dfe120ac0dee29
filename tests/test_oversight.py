"""The Oversight page and API, the reliability job, the blind and gold shares, and the label
confidences snapshots record."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.urls import reverse

from annotator.models import ItemState, JobStatus, ReliabilityRun, ReviewItem, Role
from annotator.services.exports import export_to_path
from annotator.services.oversight import (
    reliability_execute,
    reliability_refresh,
    review_item_gold_set,
)
from annotator.services.projects import project_settings_update
from annotator.services.review import review_adjudicate, review_claim_next, review_submit
from annotator.services.snapshots import (
    SnapshotFilters,
    snapshot_create,
    snapshot_examples_hash,
    snapshot_preview,
)
from tests.factories import add_member, bearer, login, make_project, make_review_item

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def project():
    """Two experts agreed on one item, disagreed on another (settled and made gold), and one
    of them answered the gold item blind when it came back as a probe."""
    project = make_project("Oversight", reviews_per_item=2)
    admin = add_member(project, Role.ADMIN, username="boss")
    alice = add_member(project, Role.EXPERT, username="alice")
    bob = add_member(project, Role.EXPERT, username="bob")
    agreed = make_review_item(project, query="Agreed", priority=0.9)
    split = make_review_item(project, query="Split", priority=0.5)
    for expert in (alice, bob):
        review_claim_next(project=project, expert=expert)
        review_submit(item=agreed, expert=expert, action="approve", seconds_spent=12)
    review_claim_next(project=project, expert=alice)
    review_submit(item=split, expert=alice, action="approve", seconds_spent=20)
    review_claim_next(project=project, expert=bob)
    review_submit(item=split, expert=bob, action="reject", reason_code="false_alarm",
                  seconds_spent=30)
    review_adjudicate(item=split, admin=admin, final_verdict="safe")
    review_item_gold_set(item=split, admin=admin, gold=True)
    carol = add_member(project, Role.EXPERT, username="carol")
    project_settings_update(project=project, gold_share=1.0, blind_share=1.0)
    served = review_claim_next(project=project, expert=carol)
    assert served.pk == split.pk and served.served_as.gold_probe and served.served_as.blind
    review_submit(item=served, expert=carol, action="label", final_verdict="safe",
                  seconds_spent=40)
    project_settings_update(project=project, gold_share=0.0, blind_share=0.0)
    return project


def estimate(project) -> ReliabilityRun:
    run = reliability_refresh(project=project)
    reliability_execute(run=run)
    run.refresh_from_db()
    return run


def page_url(project) -> str:
    return reverse("annotator:oversight", args=[project.slug])


# -- the job ------------------------------------------------------------------------------------


def test_the_job_reports_reliability_gold_accuracy_and_modes(project):
    run = estimate(project)
    assert run.status == JobStatus.SUCCEEDED and run.fingerprint
    report = run.report
    assert report["counts"] == {"verdicts": 5, "experts": 3, "items": 2, "blind_verdicts": 1,
                                "gold_items": 1, "gold_answers": 1, "adjudicated_items": 0}
    rows = {row["username"]: row for row in report["experts"]}
    # Only carol's answer was a gold probe: alice's and bob's reviews of that item were the
    # disagreement, not a test.
    assert rows["alice"]["gold"] is None and rows["bob"]["gold"] is None
    assert rows["carol"]["gold"]["accuracy"]["k"] == 1 == rows["carol"]["gold"]["accuracy"]["n"]
    assert rows["carol"]["blind_reviews"] == 1 and rows["carol"]["seconds_per_item"] == 40
    assert rows["bob"]["seconds_per_item"] == 21
    # Against the gold label (safe): alice assisted right, bob assisted wrong, carol blind right.
    modes = report["comparison"]
    assert (modes["assisted"]["accuracy"]["k"], modes["assisted"]["accuracy"]["n"]) == (1, 2)
    assert (modes["blind"]["accuracy"]["k"], modes["blind"]["accuracy"]["n"]) == (1, 1)
    # The gold item's confidence is certain; items carry their posteriors.
    gold = ReviewItem.objects.get(project=project, is_gold=True)
    assert gold.label_confidence == 1.0 and gold.label_posterior["safe"] == 1.0


def test_refresh_returns_the_running_estimate_instead_of_a_second(project):
    first = reliability_refresh(project=project)
    assert reliability_refresh(project=project).pk == first.pk
    assert ReliabilityRun.objects.filter(project=project).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_refresh_from_the_api(client):
    project = make_project("Worker")
    admin = add_member(project, Role.ADMIN)
    expert = add_member(project, Role.EXPERT)
    item = make_review_item(project)
    review_claim_next(project=project, expert=expert)
    review_submit(item=item, expert=expert, action="approve")
    headers = bearer(admin)
    response = client.post(reverse("api:oversight_refresh", args=[project.slug]), **headers)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    call_command("worker", "--batch", "--interval", "0")
    status = client.get(reverse("api:oversight_run_status",
                                args=[project.slug, response.json()["id"]]), **headers).json()
    assert status["status"] == "succeeded"
    assert status["progress"]["collect"]["done"] == 1
    body = client.get(reverse("api:oversight", args=[project.slug]), **headers).json()
    assert body["stale"] is False and body["report"]["counts"]["verdicts"] == 1


# -- the page -----------------------------------------------------------------------------------


def test_the_page_before_any_estimate_offers_a_refresh(client, project):
    login(client, project.memberships.get(role=Role.ADMIN).user)
    html = client.get(page_url(project)).content.decode()
    assert "No estimate yet." in html and 'id="oversight-stale"' in html
    assert reverse("annotator:oversight_refresh", args=[project.slug]) in html
    assert 'name="blind_share"' in html and 'name="gold_share"' in html


def test_the_page_shows_the_report_with_charts(client, project):
    estimate(project)
    login(client, project.memberships.get(role=Role.ADMIN).user)
    response = client.get(page_url(project))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="oversight-modes"' in html and 'id="oversight-experts"' in html
    assert 'data-expert="carol"' in html and "100.0%" in html
    assert 'id="oversight-chart-data"' in html and "js/oversight.js" in html
    assert 'data-chart="gold"' in html and 'data-chart="speed"' in html
    assert 'id="oversight-stale"' not in html  # nothing new since the estimate
    assert '<a href="/p/oversight/oversight/" aria-current="page">Oversight</a>' in html


def test_the_htmx_panel_polls_while_estimating_and_reloads_when_done(client, project):
    login(client, project.memberships.get(role=Role.ADMIN).user)
    refresh = client.post(reverse("annotator:oversight_refresh", args=[project.slug]), **HTMX)
    html = refresh.content.decode()
    assert html.lstrip().startswith('<section id="oversight-report"')
    assert 'hx-trigger="every 2s"' in html and "estimating" in html
    polling = client.get(page_url(project) + "?poll=1", **HTMX)
    assert 'hx-trigger="every 2s"' in polling.content.decode()
    reliability_execute(run=ReliabilityRun.objects.get(project=project))
    done = client.get(page_url(project) + "?poll=1", **HTMX)
    assert done.status_code == 200 and done["HX-Refresh"] == "true"
    panel = client.get(page_url(project), **HTMX).content.decode()
    assert "hx-trigger" not in panel and 'id="oversight-experts"' in panel


def test_refresh_without_javascript_redirects_to_the_page(client, project):
    login(client, project.memberships.get(role=Role.ADMIN).user)
    response = client.post(reverse("annotator:oversight_refresh", args=[project.slug]))
    assert response.status_code == 302 and response["Location"] == page_url(project)
    assert ReliabilityRun.objects.get(project=project).status == JobStatus.QUEUED


def test_a_failed_estimate_shows_its_error(client, project):
    ReliabilityRun.objects.create(project=project, status=JobStatus.FAILED,
                                  error="The worker stopped.")
    login(client, project.memberships.get(role=Role.ADMIN).user)
    html = client.get(page_url(project)).content.decode()
    assert "last refresh failed" in html and "The worker stopped." in html


def test_experts_and_viewers_get_403(client, project):
    login(client, project.memberships.get(user__username="alice").user)
    assert client.get(page_url(project)).status_code == 403
    assert client.post(reverse("annotator:oversight_refresh", args=[project.slug])).status_code == 403


# -- the shares ---------------------------------------------------------------------------------


def test_the_settings_form_saves_and_refuses_bad_shares(client, project):
    login(client, project.memberships.get(role=Role.ADMIN).user)
    url = reverse("annotator:oversight_settings", args=[project.slug])
    saved = client.post(url, {"blind_share": "0.25", "gold_share": "0.05"})
    assert saved.status_code == 302
    project.refresh_from_db()
    assert (project.blind_share, project.gold_share) == (0.25, 0.05)
    bad = client.post(url, {"blind_share": "1.5", "gold_share": "0.05"})
    assert bad.status_code == 400 and b"less than or equal to 1" in bad.content
    project.refresh_from_db()
    assert project.blind_share == 0.25
    assert client.get(url).status_code == 405


def test_the_project_api_reads_and_patches_the_shares(client, project):
    admin = project.memberships.get(role=Role.ADMIN).user
    url = reverse("api:project_detail", args=[project.slug])
    patched = client.patch(url, {"gold_share": 0.1}, content_type="application/json",
                           **bearer(admin))
    assert patched.status_code == 200
    assert (patched.json()["gold_share"], patched.json()["blind_share"]) == (0.1, 0.0)
    for body in ({"gold_share": -0.1}, {"blind_share": "x"}, {"oversight_seed": 1},
                 {"name": "renamed"}):
        response = client.patch(url, body, content_type="application/json", **bearer(admin))
        assert response.status_code == 400, body
    project.refresh_from_db()
    assert (project.gold_share, project.name) == (0.1, "Oversight")
    expert = project.memberships.get(user__username="alice").user
    assert client.patch(url, {"gold_share": 0.5}, content_type="application/json",
                        **bearer(expert)).status_code == 403
    assert client.get(url, **bearer(expert)).json()["gold_share"] == 0.1


def test_the_oversight_api(client, project):
    admin = project.memberships.get(role=Role.ADMIN).user
    url = reverse("api:oversight", args=[project.slug])
    before = client.get(url, **bearer(admin)).json()
    assert before["report"] is None and before["stale"] is True
    run = estimate(project)
    body = client.get(url, **bearer(admin)).json()
    assert body["report"]["counts"]["verdicts"] == 5 and body["stale"] is False
    assert body["computed_at"] and body["current_run"] is None
    assert {row["username"] for row in body["report"]["experts"]} == {"alice", "bob", "carol"}
    status = client.get(reverse("api:oversight_run_status", args=[project.slug, run.pk]),
                        **bearer(admin))
    assert status.json()["status"] == "succeeded"
    expert = project.memberships.get(user__username="alice").user
    assert client.get(url, **bearer(expert)).status_code == 403


# -- snapshots ----------------------------------------------------------------------------------


def test_a_snapshot_records_fresh_label_confidences_in_its_hash(project):
    items = ReviewItem.objects.filter(project=project, state=ItemState.DONE)
    assert items.count() == 2 and all(i.label_confidence is None for i in items)
    preview = snapshot_preview(project=project, filters=SnapshotFilters())
    assert preview.confidences_stale
    snapshot = snapshot_create(project=project, name="weighted", validation_fraction=0)
    # The stale estimate was refreshed first, in process, and every example carries the
    # confidence of its curated label.
    assert ReliabilityRun.objects.filter(project=project, status=JobStatus.SUCCEEDED).count() == 1
    confidences = {e.review_item_id: e.source_confidence for e in snapshot.examples.all()}
    gold = ReviewItem.objects.get(project=project, is_gold=True)
    assert confidences[gold.pk] == 1.0
    assert all(0 < c <= 1 for c in confidences.values())
    assert snapshot_examples_hash(snapshot) == snapshot.content_hash
    assert snapshot.content_hash != preview.content_hash  # the confidences are in the hash
    # Nothing new: the next snapshot reuses the estimate and has the same hash.
    assert not snapshot_preview(project=project, filters=SnapshotFilters()).confidences_stale
    again = snapshot_create(project=project, name="again", validation_fraction=0)
    assert again.content_hash == snapshot.content_hash
    assert ReliabilityRun.objects.filter(project=project).count() == 1


def test_snapshot_exports_carry_the_confidence_and_count_no_gold_answer(project, tmp_path):
    snapshot = snapshot_create(project=project, name="weighted", validation_fraction=0)
    gold = ReviewItem.objects.get(project=project, is_gold=True)
    path = tmp_path / "pairs.jsonl"
    export_to_path(project=project, fmt="sft_chat", path=path, filters={}, snapshot=snapshot)
    rows = {row["item_id"]: row for row in map(json.loads, path.read_text().splitlines())}
    assert rows[gold.pk]["label_confidence"] == 1.0
    # The gold item's reviews are alice's and bob's disagreement; carol's gold answer is not one.
    assert len(rows[gold.pk]["review_ids"]) == 2 and rows[gold.pk]["agreement"] == 0.5
    table = tmp_path / "pairs.parquet"
    export_to_path(project=project, fmt="parquet", path=table, filters={}, snapshot=snapshot)
    pairs = snapshot.examples.filter(kind="pair").order_by("id")
    column = pq.read_table(table).column("label_confidence").to_pylist()
    assert column == [e.source_confidence for e in pairs] and None not in column and column
