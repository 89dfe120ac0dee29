"""Load benchmark: N simulated experts (locust, headless) review against a real gunicorn server.

1. A throwaway deployment: a migrated temp SQLite file (or, when DATABASE_URL is PostgreSQL, a
   fresh database on that server, dropped afterwards), one project with N experts who each have
   an API token, and enough pending items.
2. gunicorn serves it; locust runs N experts for the given time, each looping "next item,
   approve it" (benchmarks/locustfile.py).
3. The decisions stored in the database are counted and compared with the decide calls that
   were acknowledged (201): a difference is a lost (or phantom) write.

    python benchmarks/load.py                       # 50 experts, 60 s
    python benchmarks/load.py --users 5 --seconds 8  # the smoke run of the test suite
    python benchmarks/load.py --think 0 0            # a stress test: no pause between items

Each expert pauses 0.5-1.5 s per item by default (reading, one key press), so 50 experts
decide about 50 items a second.

The last line printed is one JSON object: users, seconds, requests, rps, p50_ms, p95_ms, p99_ms,
errors, decisions_acknowledged, decisions_stored, lost (acknowledged but not stored),
unacknowledged (stored but never acknowledged), database ("sqlite", or "postgresql" when
DATABASE_URL names PostgreSQL).
"""

from __future__ import annotations

# locust patches the standard library for gevent; it must happen before anything else imports.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import gevent  # noqa: E402
from locust import between  # noqa: E402
from locust.env import Environment  # noqa: E402

from benchmarks import locustfile  # noqa: E402
from scripts.live_server import deployment_env, gunicorn, is_postgres, seed  # noqa: E402

SLUG = "load"


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulated experts against a real server.")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--spawn-rate", type=float, default=25, help="users started per second")
    parser.add_argument("--items", type=int, default=0,
                        help="pending items to seed (default: plenty for the run)")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5),
                        metavar=("MIN", "MAX"),
                        help="seconds an expert spends per item (0 0: a stress test)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    print("Preparing a throwaway deployment (migrating its database) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="superalign-load-") as tmp, \
            deployment_env(Path(tmp), template_dir=Path(tmp) / "template") as env:
        workdir = Path(tmp)
        database = "postgresql" if is_postgres(env["DATABASE_URL"]) else "sqlite"
        print(f"Seeding the {database} database of {workdir} ...", flush=True)
        per_second = args.users / max(0.05, sum(args.think) / 2)  # items the experts can take
        items = args.items or max(500, int(min(per_second, 200) * args.seconds * 1.5))
        data = seed(env, "seed-review", "--slug", SLUG, "--experts", str(args.users),
                    "--items", str(items), "--overlap", "1", "--tokens")
        locustfile.SLUG = SLUG
        locustfile.KEYS[:] = data["keys"]
        locustfile.Expert.wait_time = between(*args.think)

        with gunicorn(env, workers=args.workers, threads=args.threads,
                      log_path=workdir / "gunicorn.log") as base:
            print(f"{args.users} experts for {args.seconds:g} s against {base} "
                  f"({args.workers} workers x {args.threads} threads, {items} items, "
                  f"{args.think[0]:g}-{args.think[1]:g} s per item)", flush=True)
            # stop_timeout lets every expert finish the item in hand when time is up, so each
            # decide the server stored was also acknowledged to its client (and vice versa).
            environment = Environment(user_classes=[locustfile.Expert], host=base,
                                      stop_timeout=60)
            runner = environment.create_local_runner()
            started = time.monotonic()
            runner.start(args.users, spawn_rate=args.spawn_rate)
            gevent.sleep(args.seconds)
            runner.quit()  # waits for the users' requests in flight
            elapsed = time.monotonic() - started
            stored = seed(env, "count-reviews", "--slug", SLUG)["reviews"]

    total = environment.stats.total
    for name, entry in sorted(environment.stats.entries.items()):
        print(f"  {name[1]:>4} {name[0]:<14} {entry.num_requests:>7} requests, "
              f"{entry.num_failures} failures, p50 {entry.get_response_time_percentile(0.5):.0f} ms, "
              f"p95 {entry.get_response_time_percentile(0.95):.0f} ms")
    for error in list(environment.stats.errors.values())[:10]:
        print(f"  error x{error.occurrences}: {error.method} {error.name}: {error.error}")
    acknowledged = locustfile.acknowledged()
    result = {
        "users": args.users,
        "seconds": round(elapsed, 1),
        "requests": total.num_requests,
        "rps": round(total.num_requests / elapsed, 1),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "errors": total.num_failures,
        "decisions_acknowledged": acknowledged,
        "decisions_stored": stored,
        "lost": max(0, acknowledged - stored),
        "unacknowledged": max(0, stored - acknowledged),
        "database": database,
        "gunicorn": f"{args.workers}x{args.threads}",
        "think_s": list(args.think),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
