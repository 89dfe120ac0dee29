"""Reliability estimates on a planted panel, through the app's own services: simulated experts
with known error rates claim and decide items with `review_claim_next` / `review_submit` (blind
items and gold probes served by the app), then the reliability job estimates them."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from annotator.models import ItemState, JobStatus, Review, ReviewItem
from annotator.services.oversight import reliability_refresh
from annotator.tasks.oversight import reliability_run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from oversight_django import DjangoBackend
from oversight_panel import SCENARIOS, expected_error, make_items
from oversight_sim import run_panel

pytestmark = pytest.mark.django_db

SEED = 3


@pytest.fixture
def panel():
    """Five experts (flip rates 5-30%, nobody defers to the critic) on 240 items, overlap 3,
    with 24 gold items: a fifth of the items blind, a tenth of each queue gold."""
    scenario = SCENARIOS["uniform"]
    items = make_items(scenario, 240, SEED, "item-")
    gold_items = make_items(scenario, 24, SEED, "gold-")
    world = {i.item_id: i for i in items + gold_items}
    backend = DjangoBackend(items, gold_items, [e.expert_id for e in scenario.experts],
                            overlap=3, seed=SEED, blind_share=0.2, gold_share=0.1)
    gold_before = list(ReviewItem.objects.filter(project=backend.project, is_gold=True)
                       .order_by("id").values_list("state", "final_verdict", "reviews_done"))
    run_panel(backend, scenario, world, SEED)
    return scenario, backend, world, gold_before


def test_the_app_serves_the_panel_by_the_rules(panel):
    _scenario, backend, _world, gold_before = panel
    project = backend.project
    reviews = Review.objects.filter(item__project=project).exclude(action="adjudicate")
    # Overlap 3 on every regular item, nobody twice on an item, all regular items curated or
    # sent to adjudication.
    regular = reviews.filter(gold_probe=False)
    assert set(Counter(regular.values_list("item_id", flat=True)).values()) == {3}
    assert max(Counter(reviews.values_list("item_id", "expert_id")).values()) == 1
    assert not ReviewItem.objects.filter(project=project, state=ItemState.PENDING).exists()
    # Blind reviews and gold probes at about their shares.
    assert 0.12 < reviews.filter(blind=True).count() / reviews.count() < 0.28
    assert 0.05 < reviews.filter(gold_probe=True).count() / reviews.count() < 0.15
    # Gold answers never changed a gold item.
    gold_after = list(ReviewItem.objects.filter(project=project, is_gold=True)
                      .order_by("id").values_list("state", "final_verdict", "reviews_done"))
    assert gold_after == gold_before


def test_the_reliability_job_recovers_the_planted_error_rates(panel):
    scenario, backend, world, _gold_before = panel
    run = reliability_refresh(project=backend.project)
    reliability_run.call(job_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    report = run.report
    names = {str(user.pk): expert_id for expert_id, user in backend.users.items()}
    rows = {names[row["expert_id"]]: row for row in report["experts"]}
    assert set(rows) == {e.expert_id for e in scenario.experts}
    errors = []
    for expert in scenario.experts:
        row = rows[expert.expert_id]
        planted = expected_error(scenario, expert, row["blind_reviews"] / row["reviews"])
        errors.append(abs(row["estimated_error"] - planted))
        # Gold accuracy is scored on gold probes only, with an interval that holds the truth.
        gold = row["gold"]["accuracy"]
        assert gold["n"] == row["gold_answers"] > 0
        assert gold["lo"] <= 1 - expert.flip <= gold["hi"]
    assert sum(errors) / len(errors) < 0.05
    ranked = sorted(scenario.experts, key=lambda e: rows[e.expert_id]["estimated_error"])
    assert ranked[0].expert_id == "expert-1" and ranked[-1].expert_id == "expert-5"
    # The labels: Dawid-Skene's posterior is stored on every reviewed item, and the curated
    # label's confidence is high where the panel was right and gold items are certain.
    items = ReviewItem.objects.filter(project=backend.project).exclude(label_posterior=None)
    assert items.count() == len(world)
    gold = items.filter(is_gold=True)
    assert set(gold.values_list("label_confidence", flat=True)) == {1.0}
    curated = items.filter(state=ItemState.DONE, is_gold=False)
    right = [i.label_confidence for i in curated
             if i.final_verdict == world[backend.sim_id[i.pk]].truth]
    wrong = [i.label_confidence for i in curated
             if i.final_verdict != world[backend.sim_id[i.pk]].truth]
    assert right and sum(right) / len(right) > 0.9
    assert not wrong or sum(wrong) / len(wrong) < sum(right) / len(right)
    # Assisted vs blind is reported, pooled and per expert.
    comparison = report["comparison"]
    assert comparison["assisted"]["reviews"] > comparison["blind"]["reviews"] > 0
    assert comparison["blind"]["seconds_per_item"] > comparison["assisted"]["seconds_per_item"]
