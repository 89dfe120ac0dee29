"""Server time of "decide + render the next item" on the review page, with 100k queued items.

Fills a temporary SQLite file database (the app's real settings: WAL, IMMEDIATE transactions)
with 100k attack -> response -> critique -> review items via bulk_create, then an expert works
through the queue with htmx POSTs through Django's test client, exactly as the browser does
(decision, claim of the next item, progress figures, fragment rendering). Prints p50/p95 and the
queries per request; the last line is one JSON object.

    .venv/bin/python benchmarks/review_latency.py [--items 100000] [--decisions 400]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def setup_django(db_path: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("SECURE_COOKIES", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # allows the test client's "testserver" host
    call_command("migrate", verbosity=0)


def fill(n_items: int, seed: int = 0):
    """One project, one expert, n_items pending items with random priorities (bulk inserts)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotator.models import AttackQuery, Critique, LearnerVersion, Response, ReviewItem, Role
    from annotator.services.projects import membership_set, project_create

    rng = random.Random(seed)
    project = project_create(name="Bench")
    learner = LearnerVersion.objects.filter(project=project).first()
    expert = get_user_model().objects.create_user(username="expert", password="x" * 20)
    membership_set(project=project, user=expert, role=Role.EXPERT)
    verdicts = ["unsafe", "safe", "refusal", "over_refusal"]
    chunk = 5000
    with transaction.atomic():
        for start in range(0, n_items, chunk):
            size = min(chunk, n_items - start)
            attacks = AttackQuery.objects.bulk_create(
                AttackQuery(project=project, text=f"Attack {start + i}: how do I pick a lock?",
                            strategy="direct", category="illegal_activity", seq=start + i)
                for i in range(size))
            responses = Response.objects.bulk_create(
                Response(attack=a, learner_version=learner,
                         text=f"Sure! Step 1: insert a tension wrench ({a.seq}). Step 2: rake.")
                for a in attacks)
            critiques = []
            for r in responses:
                confidence, severity = rng.random(), rng.randint(0, 4)
                critiques.append(Critique(
                    response=r, critic_name="layered", critic_version="bench",
                    verdict=rng.choice(verdicts), category="illegal_activity", severity=severity,
                    confidence=confidence, spans=[{"start": 6, "end": 40, "text": ""}],
                    explanation="The response gives step-by-step instructions.",
                    suggested_revision="I can't help with that, but a locksmith can."))
            critiques = Critique.objects.bulk_create(critiques)
            ReviewItem.objects.bulk_create(
                ReviewItem(project=project, critique=c,
                           priority=(1 - c.confidence) + c.severity / 4, reviews_required=1)
                for c in critiques)
    return project, expert


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=400)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.urls import reverse

        started = time.perf_counter()
        project, expert = fill(args.items)
        print(f"filled {args.items} items in {time.perf_counter() - started:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        client = Client(HTTP_HX_REQUEST="true")
        client.force_login(expert)
        item_id = re.compile(rb'data-item-id="(\d+)"')
        first = client.get(reverse("annotator:review_queue", args=[project.slug]))
        current = int(item_id.search(first.content).group(1))

        rng = random.Random(1)
        actions = (["approve"] * 7) + ["edit", "reject", "skip"]
        timings, cpu_timings, queries = [], [], []
        for n in range(args.decisions + 20):
            action = rng.choice(actions)
            data = {"action": action, "client_ms": "2500"}
            if action == "edit":
                data["corrected_response"] = "Please call a licensed locksmith."
            elif action == "reject":
                data["reason_code"] = "false_alarm"
            url = reverse("annotator:review_decide", args=[project.slug, current])
            with CaptureQueriesContext(connection) as captured:
                t0, c0 = time.perf_counter(), time.process_time()
                response = client.post(url, data)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert response.status_code == 200, response.content[:500]
            current = int(item_id.search(response.content).group(1))
            if n >= 20:  # the first requests warm caches and code paths
                timings.append(elapsed * 1000)
                cpu_timings.append(cpu * 1000)
                queries.append(len(captured.captured_queries))

        # The worst request: the decision that schedules the critic's next retrain check (the
        # first after a quiet spell, at most one per CRITIC_RETRAIN_MINUTES: two more writes,
        # services/critic_learning.py) landing on an items-left refresh (one more count).
        from django.core.cache import cache

        from annotator.models import ItemState, Project, ReviewItem

        Project.objects.filter(pk=project.pk).update(critic_retrain_due_at=None)
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            response = client.post(reverse("annotator:review_decide", args=[project.slug, current]),
                                   {"action": "approve", "client_ms": "2500"})
        assert response.status_code == 200, response.content[:500]
        scheduling_queries = len(captured.captured_queries)
        assert Project.objects.get(pk=project.pk).critic_retrain_due_at is not None

        # What the cached figure saves: one exact count of the pending items.

        t0 = time.perf_counter()
        left = ReviewItem.objects.filter(project=project, state=ItemState.PENDING).count()
        count_ms = (time.perf_counter() - t0) * 1000

    # Calibration: how fast is this CPU right now? (An idle 2020s core runs this loop in
    # about 15-20 ms; on a shared, overloaded machine every figure above scales with it.)
    t0 = time.perf_counter()
    for _ in range(1_000_000):
        pass
    loop_ms = (time.perf_counter() - t0) * 1000

    result = {
        "items": args.items,
        "decisions": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(percentile(timings, 95), 2),
        "p99_ms": round(percentile(timings, 99), 2),
        "max_ms": round(max(timings), 2),
        "mean_ms": round(statistics.fmean(timings), 2),
        # CPU time of the (single-threaded) request: what the wall time would be on an idle
        # machine; on a shared, overloaded CPU the wall time above includes waiting for a core.
        "p50_cpu_ms": round(statistics.median(cpu_timings), 2),
        "p95_cpu_ms": round(percentile(cpu_timings, 95), 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cpu_count": os.cpu_count(),
        "python_loop_1e6_ms": round(loop_ms, 1),
        "queries_per_request_max": max(queries),
        "queries_scheduling_decision": scheduling_queries,
        "items_left_count_ms": round(count_ms, 2),
        "items_left": left,
        "database": "sqlite",
    }
    print(f"decide + next item over {result['decisions']} htmx POSTs with {args.items} items: "
          f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms "
          f"(CPU time p50 {result['p50_cpu_ms']} ms, p95 {result['p95_cpu_ms']} ms; load "
          f"{result['load_average_1m']} on {result['cpu_count']} cores), "
          f"<= {result['queries_per_request_max']} queries ({scheduling_queries} for the decision "
          f"that schedules a critic retrain check, on an items-left refresh); an exact items-left "
          f"COUNT costs "
          f"{result['items_left_count_ms']} ms (cached {10} s instead)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
