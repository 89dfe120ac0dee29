"""Oversight simulation: five experts with planted error rates review a few thousand items with
overlap 3; does Dawid-Skene (anchored on gold items) beat majority vote, and does it recover
each expert's error rate?

    .venv/bin/python benchmarks/oversight_sim.py [--items 3000] [--seed 1] [--blind-share 0.2]
        [--backend django|core]

The world (true verdicts, the critic, the experts' class-dependent confusions, item difficulty,
over-trust and timing) is in `oversight_panel.py`; its docstring lists every assumption. The part
that serves items and records reviews is a `ReviewBackend`: by default `DjangoBackend`
(`oversight_django.py`), the app's own review services on a throwaway SQLite database (every
decision is a claim and a submit, as in the browser; the verdicts are read back as the
reliability job reads them, and the job itself runs at the end); `--backend core` is the same
queue in memory on the alignment_core sampler (`CoreBackend`), seconds instead of minutes.

Figures (gold items excluded from every accuracy, since Dawid-Skene is clamped to them):
majority_acc / aggregated_acc: the share of regular items whose majority-vote / Dawid-Skene
label is the true one. reliability_mae: mean over experts of |estimated - planted error rate|,
the planted rate being the model's exact expectation for the expert's blind share (their flip
rate when judging alone, shifted by trusting the critic when assisted). The last line is one
JSON object: items, experts, majority_acc, aggregated_acc, reliability_mae, seconds, and the
supporting figures.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from oversight_panel import (
    SCENARIOS,
    ReviewBackend,
    Scenario,
    Served,
    SimItem,
    bayes_label,
    decide,
    expected_error,
    make_items,
)

from alignment_core.oversight import (
    ExpertVerdict,
    ReliabilityReport,
    compare_modes,
    estimate_reliability,
    gold_accuracy,
    majority_labels,
    plan_serving,
)


class CoreBackend:
    """A review queue in memory: items in a fixed order, each to `overlap` distinct experts, the
    blind and gold choices from `alignment_core.oversight.sampler`, gold answers recorded and
    scored but never written back to the gold labels. It knows what the app would know (the
    critic's verdicts, the gold labels), never the simulation's truth."""

    def __init__(self, item_ids: list[str], critic: dict[str, str], gold: dict[str, str], *,
                 overlap: int, seed: int, blind_share: float, gold_share: float) -> None:
        self.item_ids, self.overlap, self.seed = item_ids, overlap, seed
        self.blind_share, self.gold_share = blind_share, gold_share
        self.critic, self.gold = dict(critic), dict(gold)
        self.reviewers: dict[str, set[str]] = {i: set() for i in item_ids}
        self.cursor: dict[str, int] = {}  # per expert: no earlier item is open to them
        self.position: dict[str, int] = {}  # per expert: decisions so far
        self.blind: dict[tuple[str, str], bool] = {}
        self.gold_answered: dict[str, set[str]] = {}
        self.verdicts: list[ExpertVerdict] = []

    def _queue_head(self, expert_id: str) -> str | None:
        k = self.cursor.get(expert_id, 0)
        while k < len(self.item_ids):
            taken = self.reviewers[self.item_ids[k]]
            if len(taken) < self.overlap and expert_id not in taken:
                break
            k += 1
        self.cursor[expert_id] = k
        return self.item_ids[k] if k < len(self.item_ids) else None

    def next_item(self, expert_id: str) -> Served | None:
        answered = self.gold_answered.get(expert_id, set())
        serving = plan_serving(
            seed=self.seed, expert_id=expert_id, position=self.position.get(expert_id, 0),
            next_item_id=self._queue_head(expert_id),
            gold_candidates=[g for g in self.gold if g not in answered],
            blind_share=self.blind_share, gold_share=self.gold_share)
        if serving is None:
            return None
        self.blind[(expert_id, serving.item_id)] = serving.blind
        return Served(serving.item_id, None if serving.blind else self.critic[serving.item_id])

    def submit(self, expert_id: str, item_id: str, verdict: str, seconds: float) -> None:
        if item_id in self.gold:
            self.gold_answered.setdefault(expert_id, set()).add(item_id)
        else:
            self.reviewers[item_id].add(expert_id)
        self.position[expert_id] = self.position.get(expert_id, 0) + 1
        self.verdicts.append(ExpertVerdict(
            item_id=item_id, expert_id=expert_id, verdict=verdict,
            blind=self.blind[(expert_id, item_id)], seconds=seconds,
            critic_verdict=self.critic[item_id]))

    def results(self) -> tuple[list[ExpertVerdict], dict[str, str]]:
        return list(self.verdicts), dict(self.gold)


def run_panel(backend: ReviewBackend, scenario: Scenario, world: dict[str, SimItem],
              seed: int) -> None:
    """Experts work in parallel on simulated clocks: whoever is free first takes the next item,
    so faster experts review more items, as in a real shared queue."""
    rng = random.Random(f"{seed}:experts")
    experts = {e.expert_id: e for e in scenario.experts}
    free_at = [(0.0, e.expert_id) for e in scenario.experts]
    heapq.heapify(free_at)
    while free_at:
        clock, expert_id = heapq.heappop(free_at)
        served = backend.next_item(expert_id)
        if served is None:
            continue  # nothing left for this expert
        verdict, seconds = decide(rng, scenario, experts[expert_id], world[served.item_id],
                                  served.critic_verdict)
        backend.submit(expert_id, served.item_id, verdict, seconds)
        heapq.heappush(free_at, (clock + seconds, expert_id))


def _accuracy(labels: dict[str, str], items: list[SimItem]) -> float:
    return sum(labels.get(i.item_id) == i.truth for i in items) / len(items)


def _f(x: float | None, spec: str) -> str:
    """A figure for the printout; "n/a" where its inputs were missing (a small run)."""
    return "n/a" if x is None else format(x, spec)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _expert_rows(scenario: Scenario, verdicts: list[ExpertVerdict], world: dict[str, SimItem],
                 report: ReliabilityReport, gold: dict[str, str]) -> list[dict]:
    """Per expert: planted, realised (on the reviews they actually gave: what an estimator could
    at best recover from this sample) and estimated error rates, and gold accuracy."""
    estimated = {e.expert_id: e.error_rate for e in report.experts}
    gold_scores = {g.expert_id: g.accuracy for g in gold_accuracy(verdicts, gold)}
    rows = []
    for expert in scenario.experts:
        mine = [v for v in verdicts if v.expert_id == expert.expert_id]
        blind_share = sum(v.blind for v in mine) / len(mine)
        rows.append({
            "expert": expert.expert_id, "flip": expert.flip, "trust": expert.trust,
            "reviews": len(mine), "blind_share": blind_share,
            "planted_error": expected_error(scenario, expert, blind_share),
            "realised_error": sum(v.verdict != world[v.item_id].truth for v in mine) / len(mine),
            "estimated_error": estimated[expert.expert_id],
            "gold": gold_scores[expert.expert_id]})
    return rows


def _bayes_labels(scenario: Scenario, verdicts: list[ExpertVerdict]) -> dict[str, str]:
    experts = {e.expert_id: e for e in scenario.experts}
    by_item: dict[str, list] = {}
    for v in verdicts:
        by_item.setdefault(v.item_id, []).append((experts[v.expert_id], v.verdict, v.blind))
    return {item_id: bayes_label(scenario, reviews) for item_id, reviews in by_item.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="realistic")
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--gold-items", type=int, default=150)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--blind-share", type=float, default=0.2)
    parser.add_argument("--gold-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("django", "core"), default="django",
                        help="django: the app's review services on a throwaway SQLite database "
                        "(default); core: the same queue in memory")
    args = parser.parse_args()
    started = time.perf_counter()
    time.process_time()  # CPU time from here: the run is one thread (SQLite runs in-process)
    if args.backend == "django":
        with tempfile.TemporaryDirectory() as tmp:
            _setup_django(Path(tmp) / "oversight.sqlite3")
            run(args, started)
    else:
        run(args, started)


def _setup_django(db_path: Path) -> None:
    """A throwaway SQLite file with the app's real settings, migrated (review_latency.py's)."""
    from review_latency import setup_django

    setup_django(db_path)


def _backend(args: argparse.Namespace, scenario: Scenario, items: list[SimItem],
             gold_items: list[SimItem], world: dict[str, SimItem]) -> ReviewBackend:
    if args.backend == "core":
        return CoreBackend([i.item_id for i in items],
                           {i.item_id: i.critic_verdict for i in world.values()},
                           {i.item_id: i.truth for i in gold_items}, overlap=args.overlap,
                           seed=args.seed, blind_share=args.blind_share,
                           gold_share=args.gold_share)
    from oversight_django import DjangoBackend  # needs Django set up (main)

    return DjangoBackend(items, gold_items, [e.expert_id for e in scenario.experts],
                         overlap=args.overlap, seed=args.seed, blind_share=args.blind_share,
                         gold_share=args.gold_share)


def _job_check(backend: ReviewBackend, report: ReliabilityReport) -> dict:
    """Django only: run the reliability job as the app would and compare what it stored with
    the estimate above (the same verdicts and gold labels, so the same figures)."""
    from annotator.models import ReliabilityRun
    from annotator.services.oversight import reliability_execute

    t0 = time.perf_counter()
    run = ReliabilityRun.objects.create(project=backend.project)
    reliability_execute(run=run)
    seconds = time.perf_counter() - t0
    names = {str(u.pk): e for e, u in backend.users.items()}
    stored = {names[row["expert_id"]]: row["estimated_error"] for row in run.report["experts"]}
    here = {e.expert_id: e.error_rate for e in report.experts}
    return {"seconds_job": round(seconds, 2),
            "job_vs_script_max_diff": round(max(abs(stored[e] - here[e]) for e in here), 6)}


def run(args: argparse.Namespace, started: float) -> None:
    """The simulation and its report; `started` is when the script began (so the seconds
    include setting the database up)."""
    scenario = SCENARIOS[args.scenario]

    # 1. The world, and the experts working through the queue.
    items = make_items(scenario, args.items, args.seed, "item-")
    gold_items = make_items(scenario, args.gold_items, args.seed, "gold-")
    world = {i.item_id: i for i in items + gold_items}
    backend = _backend(args, scenario, items, gold_items, world)
    set_up = time.perf_counter() - started
    run_panel(backend, scenario, world, args.seed)
    verdicts, gold = backend.results()
    simulated = time.perf_counter() - started - set_up

    # 2. Aggregation: Dawid-Skene anchored on gold, majority vote, and the Bayes ceiling.
    report = estimate_reliability(verdicts, gold)
    fitted = time.perf_counter() - started - set_up - simulated
    majority_acc = _accuracy(majority_labels(verdicts, seed=args.seed), items)
    aggregated_acc = _accuracy(report.labels(), items)
    bayes_acc = _accuracy(_bayes_labels(scenario, verdicts), items)

    # 3. Reliability per expert.
    rows = _expert_rows(scenario, verdicts, world, report, gold)
    mae = sum(abs(r["estimated_error"] - r["planted_error"]) for r in rows) / len(rows)
    mae_realised = sum(abs(r["estimated_error"] - r["realised_error"]) for r in rows) / len(rows)

    # 4. Assisted vs blind, as the Oversight page would report it (against gold labels only),
    # and against the simulation's full truth to show how far the gold-only figures are off.
    on_gold = compare_modes(verdicts, gold)[0]
    on_truth = compare_modes(verdicts, {i.item_id: i.truth for i in world.values()})[0]
    seconds = time.perf_counter() - started
    job = _job_check(backend, report) if args.backend == "django" else {}

    print(f"scenario {scenario.name}: {len(items)} items + {len(gold_items)} gold, "
          f"{len(scenario.experts)} experts, overlap {args.overlap}, {len(verdicts)} verdicts; "
          f"blind share {args.blind_share}, gold share {args.gold_share}, seed {args.seed}")
    print(f"{'expert':10} {'flip':>5} {'trust':>5} {'reviews':>7} {'blind':>5} {'planted':>7} "
          f"{'realised':>8} {'DS est.':>7}   gold accuracy [95% Clopper-Pearson]")
    for r in rows:
        g = r["gold"]
        print(f"{r['expert']:10} {r['flip']:5.2f} {r['trust']:5.2f} {r['reviews']:7d} "
              f"{r['blind_share']:5.2f} {r['planted_error']:7.3f} {r['realised_error']:8.3f} "
              f"{r['estimated_error']:7.3f}   {g.rate:.3f} [{g.lo:.3f}, {g.hi:.3f}] of {g.n}")
    print(f"accuracy on the {len(items)} regular items: majority vote {majority_acc:.4f}, "
          f"Dawid-Skene {aggregated_acc:.4f} ({aggregated_acc - majority_acc:+.4f}), Bayes "
          f"ceiling with the planted model {bayes_acc:.4f} ({bayes_acc - majority_acc:+.4f})")
    print(f"reliability MAE {mae:.4f} vs planted error rates, {mae_realised:.4f} vs realised; "
          f"EM iterations {report.iterations}")
    for name, c in (("gold labels", on_gold), ("full truth", on_truth)):
        a, b = c.assisted, c.blind
        print(f"assisted vs blind against {name}: accuracy {_f(a.accuracy.rate, '.3f')} "
              f"(n={a.accuracy.n}) vs {_f(b.accuracy.rate, '.3f')} (n={b.accuracy.n}); s/item "
              f"{_f(a.seconds_per_item, '.1f')} vs {_f(b.seconds_per_item, '.1f')}; over-trust "
              f"{_f(a.wrong_critic_agreement.rate, '.3f')} vs blind base rate "
              f"{_f(b.wrong_critic_agreement.rate, '.3f')}; critic value "
              f"{_f(c.correct_per_minute_gain, '+.3f')} right verdicts per expert minute")
    print(f"time ({args.backend} backend): setup {set_up:.2f} s, simulation {simulated:.2f} s "
          f"({len(verdicts)} decisions, {1000 * simulated / max(len(verdicts), 1):.1f} ms each), "
          f"Dawid-Skene fit {fitted:.2f} s (with importing crowd-kit), total {seconds:.2f} s; "
          f"CPU time of the whole process {time.process_time():.2f} s (about what the run takes on "
          f"an idle core)")
    if job:
        print(f"the reliability job on the same database: {job['seconds_job']:.2f} s; its stored "
              f"error rates differ from the fit above by at most {job['job_vs_script_max_diff']}")
    print(json.dumps({
        "items": len(items), "experts": len(scenario.experts),
        "majority_acc": round(majority_acc, 4), "aggregated_acc": round(aggregated_acc, 4),
        "reliability_mae": round(mae, 4), "seconds": round(seconds, 2),
        "scenario": scenario.name, "bayes_acc": round(bayes_acc, 4),
        "reliability_mae_realised": round(mae_realised, 4), "gold_items": len(gold_items),
        "verdicts": len(verdicts), "blind_share": args.blind_share,
        "gold_share": args.gold_share, "seed": args.seed, "em_iterations": report.iterations,
        "assisted_acc_gold": _round(on_gold.assisted.accuracy.rate),
        "blind_acc_gold": _round(on_gold.blind.accuracy.rate),
        "over_trust_gold": _round(on_gold.assisted.wrong_critic_agreement.rate),
        "critic_value_per_minute_gold": _round(on_gold.correct_per_minute_gain),
        "critic_value_per_minute_truth": _round(on_truth.correct_per_minute_gain),
        "backend": args.backend, "cpu_seconds": round(time.process_time(), 2),
        "load_average_1m": round(os.getloadavg()[0], 1), "seconds_setup": round(set_up, 2),
        "seconds_simulation": round(simulated, 2), "seconds_fit": round(fitted, 2), **job,
    }))


if __name__ == "__main__":
    main()
