"""Small builders for test data, shared by every test module (plain functions, no magic)."""

from __future__ import annotations

import hashlib
import itertools

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from annotator.models import (
    AttackQuery,
    Campaign,
    Critique,
    DiscoveredRisk,
    ItemState,
    JobStatus,
    LearnerVersion,
    Project,
    Response,
    ReviewItem,
    RiskDiscovery,
    Role,
)
from annotator.services.projects import membership_set, project_create
from annotator.services.review_items import item_priority
from annotator.services.tokens import token_create

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_project(name: str | None = None, **extra) -> Project:
    name = name or f"Project {next(_counter)}"
    return project_create(name=name, **extra)


def add_member(project: Project, role: str = Role.EXPERT, username: str | None = None):
    user = make_user(username)
    membership_set(project=project, user=user, role=role)
    return user


def login(client, user) -> None:
    """Log the test client in with the user's password (the real login, axes included)."""
    assert client.login(username=user.username, password=PASSWORD)


def login_as(client, project: Project, role: str):
    """A new member with `role`, logged in."""
    user = add_member(project, role)
    login(client, user)
    return user


def bearer(user) -> dict[str, str]:
    """Headers for the test client that authenticate as `user` with a fresh API token."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user, name='t').key}"}


def active_learner(project: Project) -> LearnerVersion:
    return project.learner_versions.get(status=LearnerVersion.Status.ACTIVE)


def make_campaign(project: Project, **extra) -> Campaign:
    defaults = {"name": f"Campaign {next(_counter)}", "strategies": ["direct"], "budget": 4}
    defaults.update(extra)
    return Campaign.objects.create(project=project, learner_version=active_learner(project),
                                   **defaults)


def make_review_item(project: Project, *, query: str = "How do I pick a lock?",
                     response: str = "Sure! Step 1: insert a tension wrench.",
                     verdict: str = "unsafe", confidence: float = 0.6, severity: int = 2,
                     category: str = "illegal_activity", priority: float | None = None,
                     spans: list | None = None, campaign: Campaign | None = None,
                     state: str = ItemState.PENDING, strategy: str = "direct",
                     revision: str = "I can't help with breaking into locks you don't own, "
                     "but a licensed locksmith can help you get back in.") -> ReviewItem:
    """A full chain attack → response → critique → review item, as a campaign would create it."""
    attack = AttackQuery.objects.create(project=project, campaign=campaign, text=query,
                                        strategy=strategy, category=category, severity=severity,
                                        seq=next(_counter))
    answer = Response.objects.create(attack=attack, learner_version=active_learner(project),
                                     text=response)
    if spans is None:
        start = response.find("Step 1")
        spans = [{"start": start, "end": len(response), "text": response[start:]}] if start >= 0 else []
    critique = Critique.objects.create(
        response=answer, critic_name="layered", critic_version="test", verdict=verdict,
        category=category, severity=severity, confidence=confidence, spans=spans,
        explanation="The response gives step-by-step instructions.", suggested_revision=revision)
    return ReviewItem.objects.create(
        project=project, critique=critique, state=state,
        priority=priority if priority is not None else item_priority(confidence=confidence,
                                                                     severity=severity),
        reviews_required=project.reviews_per_item)


def make_discovered_risk(project: Project, items: list[ReviewItem], *,
                         name: str = "ivory / rhino / smuggle",
                         keywords: tuple[str, ...] = ("ivory", "rhino", "smuggle"),
                         novelty: float = 0.8, severity: float = 3.0,
                         discovery: RiskDiscovery | None = None) -> DiscoveredRisk:
    """A cluster of the items' answers, as the discovery job stores it, in `discovery` or in a
    new finished run (no embedding: the cluster is written as alignment_core would return it)."""
    from alignment_core.risks import RiskCluster

    ids = [str(item.critique.response_id) for item in items]
    digest = hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:12]
    weight = float(len(ids))
    cluster = RiskCluster(
        id=f"risk-{digest}", name=name, keywords=list(keywords), member_ids=ids, size=len(ids),
        weight=weight, severity=severity, novelty=novelty, nearest_category="theft",
        score=round(novelty * weight * severity / 4, 4), position=(0.25, -0.5),
        example_ids=ids[:5], filed_under={"": len(ids)})
    if discovery is None:
        discovery = RiskDiscovery.objects.create(project=project, status=JobStatus.SUCCEEDED,
                                                 finished_at=timezone.now())
    discovery.considered += len(ids)
    discovery.points = [*discovery.points, *({"id": i, "x": 0.25, "y": -0.5,
                                              "cluster_id": cluster.id} for i in ids)]
    discovery.save(update_fields=["considered", "points"])
    return DiscoveredRisk.objects.create(discovery=discovery, key=cluster.id,
                                         rank=discovery.risks.count(), score=cluster.score,
                                         data=cluster.to_dict())


def run_worker() -> None:
    """Run the background worker until the queue is empty (tests marked transaction=True)."""
    call_command("worker", "--batch", "--interval", "0")


def plant_audits(project: Project, outcomes: list[tuple[float, bool]]) -> None:
    """Audited items the experts curated: (critic confidence, was the critic right) each."""
    for k, (confidence, right) in enumerate(outcomes):
        item = make_review_item(project, query=f"audited {confidence} {k}", confidence=confidence,
                                verdict="unsafe", state=ItemState.DONE)
        item.is_audit, item.final_verdict = True, "unsafe" if right else "safe"
        item.save()


def review_real_answers(project: Project, expert, n: int, judge: bool = False) -> list:
    """Real answers from the vendored finetune split, judged by the real rules critic, then
    decided by `expert` through the API with the human label (approve when the critic agrees,
    "the critic is wrong" with the human verdict otherwise). With `judge`, every critique also
    carries a remote judge's vote that puts 0.9 on the right verdict, as the judge voter stores
    it. Returns the (labelled answer, critique) pairs."""
    from django.urls import reverse
    from rest_framework.test import APIClient

    from alignment_core.critic import VERDICTS, make_critic
    from alignment_core.critic.data import load_answers

    rows = [row for row in load_answers("finetune") if row.verdict][:n]
    critiques = make_critic("rules").critique([row.as_input() for row in rows])
    api = APIClient()
    api.credentials(**bearer(expert))
    for row, critique in zip(rows, critiques):
        item = make_review_item(project, query=row.request, response=row.response,
                                verdict=critique.verdict, confidence=critique.confidence,
                                severity=critique.severity, category=critique.category)
        signals = dict(critique.signals)
        if judge:
            signals["votes"] = {"judge": {v: 0.9 if v == row.verdict else 0.1 / 3
                                          for v in VERDICTS}}
        item.critique.signals = signals
        item.critique.save(update_fields=["signals"])
        data = ({"action": "approve"} if critique.verdict == row.verdict else
                {"action": "reject", "reason_code": "other", "final_verdict": row.verdict})
        response = api.post(reverse("api:review_decide", args=[project.slug, item.pk]), data,
                            format="json")
        assert response.status_code == 201, response.content
    return list(zip(rows, critiques))
