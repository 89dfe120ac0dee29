"""Export throughput and memory: N curated preference pairs → TRL JSONL and Parquet.

A temporary SQLite database is filled quickly (raw executemany; every column's default comes from
the Django model, so the script follows schema changes), then each export runs in its own fresh
subprocess through the real code path (`annotator.services.exports.export_to_path`, the function
the background job and `manage.py export` call), with provenance on. Each child reports its rows,
seconds and its own peak resident memory (ru_maxrss), so the figures are the export's alone. A
first child only runs the export's streaming query and drops the rows: that floor, the load
average and the rows per CPU second (the process's own CPU time, which waiting for a busy
machine's cores does not inflate) tell how much of the time was the database and the machine.

    .venv/bin/python benchmarks/export.py [--rows 1000000] [--db var/bench-export.sqlite3]

Goal: at least 50,000 rows/s and a peak RSS under 300 MB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _setup_django(db: Path, data_dir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _template(model, **values) -> tuple[list[str], list]:
    """All concrete columns of a model and their database values for one prototype row."""
    from django.db import connection

    instance = model(**values)
    fields = model._meta.local_concrete_fields
    return ([f.column for f in fields],
            [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields])


def _batch(prototype: list, varying: dict, index: dict[str, int], lo: int,
           hi: int) -> Iterator[list]:
    """Rows lo..hi-1 of one table: the prototype row with the varying columns filled in."""
    for i in range(lo, hi):
        row = list(prototype)
        for column, make in varying.items():
            row[index[column]] = make(i)
        yield row


def fill(db: Path, rows: int) -> float:
    """Create one project with `rows` curated items (one review each); return seconds taken."""
    from django.core.management import call_command

    from annotator.models import (
        AttackQuery,
        Critique,
        ItemState,
        Response,
        Review,
        ReviewAction,
        ReviewItem,
    )
    from annotator.services.projects import project_create, user_ensure

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    expert = user_ensure(username="bench-expert", password="bench-password-123")
    project = project_create(name="Bench", slug="bench")
    learner = project.learner_versions.get()
    from annotator.models import Campaign

    campaign = Campaign.objects.create(project=project, learner_version=learner, name="Round 1",
                                       strategies=["direct"], budget=1)
    # Each table: (model, prototype values, {column: function(i) -> value}).
    plans = [
        (AttackQuery, {"project_id": project.pk, "campaign_id": campaign.pk, "strategy": "direct",
                       "category": "illegal_activity"},
         {"id": lambda i: i, "seq": lambda i: i,
          "text": lambda i: f"Attack {i}: explain step by step how to bypass lock model {i % 977}."}),
        (Response, {"attack_id": 1, "learner_version_id": learner.pk},
         {"id": lambda i: i, "attack_id": lambda i: i,
          "text": lambda i: f"Sure! Step 1 for lock {i % 977}: insert a tension wrench, then "
                            "rake the pins until the cylinder turns."}),
        (Critique, {"response_id": 1, "critic_name": "layered", "verdict": "unsafe",
                    "confidence": 0.8, "severity": 2},
         {"id": lambda i: i, "response_id": lambda i: i}),
        (ReviewItem, {"project_id": project.pk, "critique_id": 1, "state": ItemState.DONE,
                      "final_verdict": "unsafe"},
         {"id": lambda i: i, "critique_id": lambda i: i,
          "final_response": lambda i: f"I can't help bypass lock {i % 977}; a licensed "
                                      "locksmith can help you get back in legally."}),
        (Review, {"item_id": 1, "expert_id": expert.pk, "action": ReviewAction.APPROVE,
                  "final_verdict": "unsafe"},
         {"id": lambda i: i, "item_id": lambda i: i}),
    ]
    from django.db import connection

    connection.close()
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA synchronous=OFF")
    for model, values, varying in plans:
        columns, prototype = _template(model, **values)
        prototype = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in prototype]
        index = {column: columns.index(column) for column in varying}
        sql = (f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) '
               f'VALUES ({", ".join("?" * len(columns))})')

        for lo in range(1, rows + 1, 100_000):
            raw.executemany(sql, _batch(prototype, varying, index, lo, min(lo + 100_000, rows + 1)))
            raw.commit()
    raw.close()
    return time.perf_counter() - start


def run_export(fmt: str, out: Path) -> dict:
    """In a child process: one export through the real code path; rows, seconds, peak RSS."""
    from annotator.models import Project
    from annotator.services.exports import export_to_path

    project = Project.objects.get(slug="bench")
    start, cpu_start = time.perf_counter(), time.process_time()
    if fmt == "sql_only":
        # The floor: the same streaming query, rows fetched and dropped (no formatting, no file).
        from annotator.selectors import exports as rows_from

        items = rows_from.curated_items(project=project, filters={}, selection="pairs")
        rows = sum(len(chunk) for chunk in rows_from._stream(items, rows_from._ITEM_FIELDS))
        out.write_bytes(b"")
    else:
        rows = export_to_path(project=project, fmt=fmt, path=out)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return {"format": fmt, "rows": rows, "seconds": round(seconds, 2),
            "rows_s": round(rows / seconds), "cpu_seconds": round(cpu_seconds, 2),
            "rows_per_cpu_s": round(rows / max(cpu_seconds, 1e-9)), "bytes": out.stat().st_size,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="Keep the filled database here and reuse it on "
                        "the next run (filling a million rows takes minutes on a busy machine).")
    parser.add_argument("--child", nargs=3, metavar=("DB", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, fmt, out = args.child
        _setup_django(Path(db), Path(out).parent)
        print(json.dumps(run_export(fmt, Path(out))))
        return

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        db = args.db or Path(tmp) / "bench.sqlite3"
        fill_s = 0.0
        if db.exists():
            print(f"reusing {db}", flush=True)
        else:
            _setup_django(db, Path(tmp))
            fill_s = fill(db, args.rows)
            print(f"filled {args.rows:,} curated pairs in {fill_s:.1f} s", flush=True)
        results = {}
        for fmt, name in (("sql_only", "nothing"), ("trl_preference", "pairs.jsonl"),
                          ("parquet", "pairs.parquet")):
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(db), fmt, str(Path(tmp) / name)],
                capture_output=True, text=True, check=True, cwd=REPO)
            results[fmt] = json.loads(child.stdout.strip().splitlines()[-1])
            r = results[fmt]
            print(f"{fmt:>15}: {r['rows']:,} rows in {r['seconds']} s = {r['rows_s']:,} rows/s, "
                  f"({r['rows_per_cpu_s']:,} per CPU second), {r['bytes'] / 1e6:.0f} MB file, "
                  f"peak RSS {r['peak_rss_mb']} MB", flush=True)
    jsonl, parquet = results["trl_preference"], results["parquet"]
    print(json.dumps({
        "rows": jsonl["rows"], "jsonl_rows_s": jsonl["rows_s"], "parquet_rows_s": parquet["rows_s"],
        "jsonl_seconds": jsonl["seconds"], "parquet_seconds": parquet["seconds"],
        "peak_rss_mb": max(jsonl["peak_rss_mb"], parquet["peak_rss_mb"]),
        "jsonl_peak_rss_mb": jsonl["peak_rss_mb"], "parquet_peak_rss_mb": parquet["peak_rss_mb"],
        "sql_only_rows_s": results["sql_only"]["rows_s"],
        # Rows per second of the process's own CPU time: what an idle core would do, since on
        # a shared machine wall-clock time mostly measures waiting for a core.
        "jsonl_rows_per_cpu_s": jsonl["rows_per_cpu_s"],
        "parquet_rows_per_cpu_s": parquet["rows_per_cpu_s"],
        "sql_only_rows_per_cpu_s": results["sql_only"]["rows_per_cpu_s"],
        "fill_seconds": round(fill_s, 1), "provenance": True,
        "load_average_1m": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
