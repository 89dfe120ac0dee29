"""Risk discovery end to end, as a project lives it: attacks imported and judged through the real
services (import, the campaign job's critic, expert reviews), the discovery job run by the real
worker after a campaign and on demand, Dismiss remembered by the next run, Adopt feeding the
next campaign (on the tiny model), and cancel/resume.

The planted set: 20 of the attacker's seed behaviours and the two planted groups of
tests/core/risk_data (wildlife trafficking and match fixing: topics no seed category covers,
imported without a category), each written by two of the attacker's strategies; one answer in
eight refuses. Every test module run shares one embedding cache, so only the first run embeds.
"""

from __future__ import annotations

import json
import random

import pytest
from django.urls import reverse

from alignment_core.attacker import STRATEGIES, Goal, behaviours
from annotator.models import (
    AttackQuery,
    Campaign,
    DiscoveredRisk,
    JobStatus,
    ReviewItem,
    RiskCategory,
    RiskDecision,
    RiskDiscovery,
    Role,
)
from annotator.services.campaign_runner import campaign_execute
from annotator.services.campaigns import campaign_launch
from annotator.services.imports import import_file
from annotator.services.jobs import job_cancel, job_resume
from annotator.services.review import review_submit
from annotator.services.risks import risk_discovery_execute, risk_discovery_start
from tests.core.risk_data import OPENERS, STEPS, planted_requests
from tests.factories import add_member, make_project, run_worker

pytestmark = pytest.mark.django_db(transaction=True)

PLANTED = ("wildlife_trafficking", "match_fixing")
WRITERS = ("direct", "roleplay")
REFUSAL = "I'm sorry, but I can't help with that."


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("risk-data")


@pytest.fixture
def project(tiny, settings, cache_dir):
    settings.DATA_DIR = cache_dir  # the embedding cache lives here, shared by the module
    return make_project()


def planted_rows(seed: int = 0) -> list[dict]:
    """The rows of a pairs import, each with its truth: group and final verdict."""
    rng = random.Random(seed)
    goals = [(Goal(b.goal, b.category, b.id, b.severity), "ordinary")
             for b in behaviours()[::4][:20]]
    for name, requests in planted_requests().items():
        goals += [(Goal(text, "", f"{name}-{k}", 3), name) for k, text in enumerate(requests)]
    rows = []
    for writer in WRITERS:
        strategy = STRATEGIES[writer](random.Random(f"{seed}:{writer}"))
        for (goal, group), attack in zip(goals, strategy.generate([g for g, _ in goals])):
            refused = rng.random() < 0.125
            rows.append({"prompt": attack.text, "category": goal.category, "group": group,
                         "verdict": "refusal" if refused else "unsafe",
                         "response": REFUSAL if refused else
                         f"{rng.choice(OPENERS)} {goal.text} {rng.choice(STEPS)}"})
    return rows


def import_and_judge(project, admin) -> tuple[Campaign, dict[int, dict]]:
    """Import the planted set, let the worker's campaign job judge it, then have an expert
    correct the critic wherever it got the verdict wrong. Returns the import's campaign and the
    truth per Response id."""
    rows = planted_rows()
    lines = [json.dumps({key: row[key] for key in ("prompt", "response", "category")
                         if row[key]}) for row in rows]
    result = import_file(project=project, user=admin, kind="pairs", filename="planted.jsonl",
                         stream="\n".join(lines).encode())
    run_worker()
    campaign = Campaign.objects.get(pk=result.campaign)
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    expert = add_member(project, Role.EXPERT)
    truth = {}
    items = ReviewItem.objects.filter(critique__response__attack__campaign=campaign)
    for item in items.select_related("critique__response__attack"):
        row = rows[item.critique.response.attack.seq]
        truth[item.critique.response_id] = row
        if (item.critique.verdict == "unsafe") != (row["verdict"] == "unsafe"):
            review_submit(item=item, expert=expert, action="reject", reason_code="other",
                          final_verdict=row["verdict"])
    return campaign, truth


def best_clusters(clusters: list[dict], truth: dict[int, dict]) -> dict[str, dict]:
    """Per planted group: the cluster holding most of its unsafe attacks, with its precision
    (share of the cluster from the group), recall and rank."""
    found = {}
    for group in PLANTED:
        members = {pk for pk, row in truth.items()
                   if row["group"] == group and row["verdict"] == "unsafe"}
        # Stored clusters hold ids as strings (alignment_core's), the API's as integers.
        ids = {id(c): {int(i) for i in c["member_ids"]} for c in clusters}
        cluster = max(clusters, key=lambda c: len(members & ids[id(c)]))
        hits = len(members & ids[id(cluster)])
        found[group] = {"cluster": cluster, "precision": hits / cluster["size"],
                        "recall": hits / len(members), "rank": cluster["rank"]}
    return found


def test_the_job_runs_after_a_campaign_and_finds_the_planted_groups(project, admin, api,
                                                                    client):
    campaign, truth = import_and_judge(project, admin)

    # The import's campaign finishing queued a discovery, which the worker ran too.
    after = RiskDiscovery.objects.get(project=project)
    assert after.trigger == RiskDiscovery.Trigger.CAMPAIGN and after.after_campaign == campaign
    assert after.status == JobStatus.SUCCEEDED, after.error

    # The experts' corrections came after it: an admin runs discovery again through the API.
    api.force_authenticate(admin)
    response = api.post(f"/api/projects/{project.slug}/risks/discoveries/")
    assert response.status_code == 202, response.json()
    run_worker()
    discovery = RiskDiscovery.objects.get(pk=response.json()["id"])
    assert discovery.status == JobStatus.SUCCEEDED, discovery.error
    assert list(discovery.campaigns.values_list("pk", flat=True)) == [campaign.pk]
    unsafe = {pk for pk, row in truth.items() if row["verdict"] == "unsafe"}
    assert discovery.considered == len(unsafe)  # refused answers are left out

    clusters = api.get(f"/api/projects/{project.slug}/risks/clusters/").json()
    found = best_clusters(clusters, truth)
    for group, row in found.items():
        assert row["precision"] >= 0.7 and row["recall"] >= 0.6, (group, row)
        assert row["cluster"]["nearest_category"] is not None
    # The two uncovered topics are the most novel, so they lead the list; no refused answer
    # is in any cluster.
    assert sorted(row["rank"] for row in found.values()) == [0, 1]
    assert all(not (set(c["member_ids"]) - unsafe) for c in clusters)
    # Expert-confirmed attacks weigh three times a critic-only one.
    confirmed = set(ReviewItem.objects.filter(state="done", final_verdict="unsafe")
                    .values_list("critique__response_id", flat=True))
    for cluster in clusters:
        members = set(cluster["member_ids"])
        assert cluster["weight"] == pytest.approx(
            3 * len(members & confirmed) + len(members - confirmed))

    # Viewers read the page: the clusters by score, their keywords and examples, no actions.
    viewer = add_member(project, Role.VIEWER)
    client.force_login(viewer)
    page = client.get(reverse("annotator:risks_home", args=[project.slug])).content.decode()
    first = found[min(found, key=lambda g: found[g]["rank"])]["cluster"]
    assert first["name"] in page or first["name"].replace("/", "&#x2F;") in page
    assert first["keywords"][0] in page
    assert "Adopt</button>" not in page and "Dismiss</button>" not in page
    assert 'id="risk-map-data"' in page


def test_dismiss_is_remembered_and_adopt_feeds_the_next_campaign(project, admin, client, api):
    _, truth = import_and_judge(project, admin)
    risk_discovery_start(project=project, user=admin)
    run_worker()
    first = RiskDiscovery.objects.filter(project=project).first()
    clusters = [{**r.data, "id": r.pk, "rank": r.rank} for r in first.risks.all()]
    found = best_clusters(clusters, truth)
    wildlife, fixing = (found[group]["cluster"]["id"] for group in PLANTED)
    client.force_login(admin)

    def act(pk: int, action: str, **data) -> object:
        return client.post(reverse(f"annotator:risk_{action}", args=[project.slug, pk]), data,
                           headers={"HX-Request": "true"})

    # Dismiss (htmx): the card comes back as dismissed.
    response = act(fixing, "dismiss")
    assert response.status_code == 200 and b"Dismissed" in response.content
    # Adopt: a bad name and a taken one are refused with the reason, and change nothing.
    for name, reason in (("9 lives!", b"not a usable category name"),
                         ("fraud", b"exists already")):
        response = act(wildlife, "adopt", category=name)
        assert response.status_code == 400 and reason in response.content
    assert not RiskCategory.objects.exists()
    assert RiskDecision.objects.count() == 1
    response = act(wildlife, "adopt", category="Wildlife trafficking")
    assert response.status_code == 200 and b"Adopted as <strong>wildlife_trafficking" in (
        response.content)
    adopted = RiskCategory.objects.get(project=project)
    assert adopted.name == "wildlife_trafficking" and 1 <= len(adopted.behaviours) <= 8
    planted = set(planted_requests()["wildlife_trafficking"])
    assert {seed["goal"] for seed in adopted.behaviours} <= planted

    # The next run remembers both decisions, and embeds nothing it had embedded before.
    api.force_authenticate(admin)
    response = api.post(f"/api/projects/{project.slug}/risks/discoveries/")
    assert response.status_code == 202
    run_worker()
    again = RiskDiscovery.objects.get(pk=response.json()["id"])
    assert again.status == JobStatus.SUCCEEDED, again.error
    assert again.progress["save"]["vectors_new"] == 0 and again.progress["save"]["vectors_cached"]
    rows = {r.pk: r for r in again.risks.select_related("decision")}
    found = best_clusters([{**r.data, "id": pk, "rank": r.rank} for pk, r in rows.items()],
                          truth)
    kept_fixing = rows[found["match_fixing"]["cluster"]["id"]]
    kept_wildlife = rows[found["wildlife_trafficking"]["cluster"]["id"]]
    assert kept_fixing.decision.action == RiskDecision.Action.DISMISS
    assert kept_wildlife.decision.category == adopted
    # Its seeds are a known category now, so the cluster is no longer novel.
    assert kept_wildlife.data["novelty"] < found_novelty(first, kept_wildlife)
    open_keys = [c["key"] for c in api.get(f"/api/projects/{project.slug}/risks/clusters/").json()]
    assert kept_fixing.key not in open_keys and kept_wildlife.key not in open_keys
    page = client.get(reverse("annotator:risks_home", args=[project.slug])).content.decode()
    assert "Dismissed clusters (1)" in page and "Adopted clusters (1)" in page

    # The launch form offers the adopted category, and the campaign attacks with its seeds.
    form = client.get(reverse("annotator:campaign_launch", args=[project.slug])).content.decode()
    assert "wildlife trafficking (adopted)" in form
    response = client.post(reverse("annotator:campaign_launch", args=[project.slug]), {
        "strategies": ["direct"], "categories": ["wildlife_trafficking"], "budget": 6,
        "samples_per_attack": 1, "seed": 1})
    assert response.status_code == 302
    run_worker()
    campaign = Campaign.objects.get(name__startswith="direct")
    assert campaign.status == JobStatus.SUCCEEDED, campaign.error
    seeds = {seed["id"]: seed for seed in adopted.behaviours}
    attacks = list(AttackQuery.objects.filter(campaign=campaign))
    assert len(attacks) == 6
    for attack in attacks:
        seed = seeds[attack.behaviour_id]
        assert attack.category == "wildlife_trafficking"
        assert attack.text == (seed["benign_twin"] if attack.is_benign else seed["goal"])
    assert sum(not a.is_benign for a in attacks) >= 4


def found_novelty(discovery: RiskDiscovery, risk: DiscoveredRisk) -> float:
    """The novelty, in an earlier run, of the cluster `risk` continues (its decision's cluster)."""
    return discovery.risks.get(decision=risk.decision).data["novelty"]


def test_held_out_campaigns_start_nothing_and_a_queued_run_absorbs_the_next(project, admin):
    held_out = campaign_launch(project=project, user=admin, strategies=["direct"], budget=2,
                               held_out=True, enqueue=False)
    campaign_execute(campaign=held_out)
    assert held_out.status == JobStatus.SUCCEEDED and not RiskDiscovery.objects.exists()

    first = campaign_launch(project=project, user=admin, strategies=["direct"], budget=2,
                            enqueue=False)
    campaign_execute(campaign=first)
    second = campaign_launch(project=project, user=admin, strategies=["direct"], budget=2,
                             enqueue=False)
    campaign_execute(campaign=second)
    queued = RiskDiscovery.objects.get(project=project)  # one run reads both campaigns
    assert queued.status == JobStatus.QUEUED and queued.after_campaign == first

    run_worker()
    queued.refresh_from_db()
    assert queued.status == JobStatus.SUCCEEDED, queued.error
    assert set(queued.campaigns.values_list("pk", flat=True)) <= {first.pk, second.pk}
    assert held_out.pk not in set(queued.campaigns.values_list("pk", flat=True))


def test_a_cancelled_run_stops_and_resumes_to_the_end(project, admin):
    discovery = risk_discovery_start(project=project, user=admin)
    job_cancel(job=discovery)  # still queued: cancelled at once, and the worker skips it
    run_worker()
    discovery.refresh_from_db()
    assert discovery.status == JobStatus.CANCELLED and discovery.started_at is None

    job_resume(job=discovery)
    # Cancelled again while it runs: it stops at its next stage.
    RiskDiscovery.objects.filter(pk=discovery.pk).update(cancel_requested=True)
    risk_discovery_execute(discovery=RiskDiscovery.objects.get(pk=discovery.pk))
    discovery.refresh_from_db()
    assert discovery.status == JobStatus.CANCELLED and not discovery.risks.exists()

    job_resume(job=discovery)
    run_worker()
    discovery.refresh_from_db()
    assert discovery.status == JobStatus.SUCCEEDED, discovery.error
    assert discovery.progress["save"]["done"] == 0  # nothing successful to cluster yet
