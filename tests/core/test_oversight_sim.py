"""The oversight simulation's in-memory review queue (the reference the Django-backed run will be
held to) and its report line."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from oversight_panel import SCENARIOS, decide, expected_error, make_items  # noqa: E402
from oversight_sim import CoreBackend, run_panel  # noqa: E402


def test_the_queue_keeps_overlap_never_repeats_and_never_alters_gold():
    scenario = SCENARIOS["realistic"]
    items = make_items(scenario, 300, 4, "item-")
    gold_items = make_items(scenario, 30, 4, "gold-")
    world = {i.item_id: i for i in items + gold_items}
    gold = {i.item_id: i.truth for i in gold_items}
    backend = CoreBackend([i.item_id for i in items],
                          {i.item_id: i.critic_verdict for i in world.values()}, gold,
                          overlap=3, seed=4, blind_share=0.3, gold_share=0.1)
    run_panel(backend, scenario, world, seed=4)
    verdicts, gold_after = backend.results()
    assert gold_after == gold
    pairs = Counter((v.item_id, v.expert_id) for v in verdicts)
    assert max(pairs.values()) == 1  # nobody sees an item twice
    per_item = Counter(v.item_id for v in verdicts if v.item_id not in gold)
    assert set(per_item.values()) == {3} and len(per_item) == 300
    gold_answers = [v for v in verdicts if v.item_id in gold]
    assert 0.05 < len(gold_answers) / len(verdicts) < 0.15
    assert 0.2 < sum(v.blind for v in verdicts) / len(verdicts) < 0.4
    # Faster experts take more of the shared queue.
    counts = Counter(v.expert_id for v in verdicts)
    assert counts["expert-5"] > counts["expert-1"]


def test_the_planted_error_rate_is_what_the_experts_do():
    # expected_error is the model's exact expectation; a large sample of decisions matches it.
    scenario = SCENARIOS["realistic"]
    expert = scenario.experts[3]
    items = make_items(scenario, 40000, 8, "x-")
    rng = random.Random(8)
    for blind_share in (0.0, 1.0):
        wrong = 0
        for item in items:
            shown = None if blind_share == 1.0 else item.critic_verdict
            verdict, _ = decide(rng, scenario, expert, item, shown)
            wrong += verdict != item.truth
        assert abs(wrong / len(items) - expected_error(scenario, expert, blind_share)) < 0.007


def test_the_benchmark_ends_with_the_json_line_the_issue_names():
    # The in-memory queue: tests/core stays free of Django (the Django backend has its own test).
    done = subprocess.run([sys.executable, "benchmarks/oversight_sim.py", "--backend", "core",
                           "--items", "300", "--gold-items", "20", "--scenario", "uniform"], cwd=REPO,
                          capture_output=True, text=True, check=True)
    last = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("items", "experts", "majority_acc", "aggregated_acc", "reliability_mae",
                "seconds"):
        assert key in last
    assert (last["items"], last["experts"]) == (300, 5)
    assert 0.0 <= last["majority_acc"] <= 1.0 and 0.0 <= last["aggregated_acc"] <= 1.0
