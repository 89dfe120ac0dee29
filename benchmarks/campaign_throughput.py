"""The same red-team campaign in-process and through vLLM: review items per minute, per stage.

One 48-attack campaign (the five held-out strategies, the app's layered critic with its LM
writer, the app's batch size and answer length) runs through the product's own job
(annotator.services.campaign_runner) twice, on two projects of a fresh SQLite database in the
work dir: first with no endpoints (the learner, and the critic's writer, in this process), then
with the learner served by a vLLM server started here from .venv-vllm (`make vllm`); the critic's
writer follows the learner onto the server. The in-process run goes first and the server starts
after it, so the two never share the CPU. Pass --base-url (and --served-name) to use a server you
run yourself instead.

    .venv/bin/python benchmarks/campaign_throughput.py [--budget 48] [--concurrency 32]

A stage's seconds run from its first progress report to the next stage's (attack, respond,
critique, items; the report is folded into items). Items per minute: review items created over
the whole campaign's wall time. Goals (issue 14): ratio = vllm_items_min / inprocess_items_min
>= 2, and inprocess_items_min >= 40. Timings of a shared machine are not figures.

The last line is one JSON object: inprocess_items_min, vllm_items_min, ratio, and
inprocess_<stage>_s / vllm_<stage>_s for each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STRATEGIES = ("direct", "roleplay", "hypothetical", "refusal_suppression", "prefix_injection")
STAGES = ("attack", "respond", "critique", "items")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=48, help="attacks in the campaign")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="the served learner's max_concurrency")
    parser.add_argument("--model", default="bundled", help="LEARNER_MODEL (and what vLLM serves)")
    parser.add_argument("--critic", default="layered", help="CAMPAIGN_CRITIC")
    parser.add_argument("--base-url", default=None, help="an already running server's /v1 URL")
    parser.add_argument("--served-name", default="superalign")
    parser.add_argument("--work-dir", type=Path,
                        default=REPO / "var" / "bench" / "campaign_throughput")
    return parser.parse_args(argv)


def setup_django(args: argparse.Namespace) -> None:
    """A fresh database and data dir in the work dir; models from the shared cache."""
    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    args.work_dir.mkdir(parents=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{args.work_dir / 'db.sqlite3'}"
    os.environ["DATA_DIR"] = str(args.work_dir / "data")
    os.environ["LEARNER_MODEL"] = args.model
    os.environ["CAMPAIGN_CRITIC"] = args.critic
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("SECURE_COOKIES", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_campaign(name: str, args: argparse.Namespace,
                 learner: dict | None = None) -> tuple[float, dict[str, float], int]:
    """Run one campaign to the end: (items per minute, seconds per stage, items)."""
    from annotator.models import JobStatus, ReviewItem
    from annotator.services.campaign_runner import campaign_execute
    from annotator.services.campaigns import campaign_launch
    from annotator.services.endpoints import endpoint_set
    from annotator.services.projects import project_create

    project = project_create(name=name)
    if learner is not None:
        endpoint_set(project=project, role="learner", values=learner)
    # Not enqueued: this process runs the job (as `manage.py campaign_run` does).
    campaign = campaign_launch(project=project, user=None, strategies=list(STRATEGIES),
                               budget=args.budget, seed=args.seed, enqueue=False)
    first_seen: dict[str, float] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        first_seen.setdefault(stage, time.perf_counter())
        print(f"  {name}: {stage} {done}/{total}", flush=True)

    started = time.perf_counter()
    campaign_execute(campaign=campaign, on_progress=on_progress)
    ended = time.perf_counter()
    campaign.refresh_from_db()
    if campaign.status != JobStatus.SUCCEEDED:
        raise SystemExit(f"{name}: the campaign {campaign.status}: {campaign.error}")
    marks = [first_seen.get(stage, started) for stage in STAGES] + [ended]
    seconds = {stage: round(marks[k + 1] - marks[k], 2) for k, stage in enumerate(STAGES)}
    items = ReviewItem.objects.filter(critique__response__attack__campaign=campaign).count()
    print(f"{name}: {items} items in {ended - started:.1f} s; stages {seconds}; "
          f"tokens {campaign.usage}", flush=True)
    return items / ((ended - started) / 60), seconds, items


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_django(args)
    from alignment_core.model_loader import resolve_model_dir
    from scripts.vllm_server import VllmServer, stop_on_sigterm

    stop_on_sigterm()  # a `timeout` or Ctrl+C still stops the server we start
    figures: dict[str, float] = {}
    print(f"Campaign of {args.budget} attacks ({', '.join(STRATEGIES)}), critic {args.critic}",
          flush=True)
    rate, seconds, _ = run_campaign("in-process", args)
    figures["inprocess_items_min"] = round(rate, 2)
    figures.update({f"inprocess_{stage}_s": value for stage, value in seconds.items()})

    server = None
    if args.base_url:
        base_url, name = args.base_url, args.served_name
    else:
        from django.conf import settings

        server = VllmServer(resolve_model_dir(args.model, settings.MODEL_CACHE_DIR),
                            served_name=args.served_name,
                            log_path=args.work_dir / "vllm.log")
        print(f"starting vLLM (log: {server.log_path}) ...", flush=True)
        started = time.perf_counter()
        server.start()
        print(f"vLLM ready after {time.perf_counter() - started:.0f} s", flush=True)
        base_url, name = server.base_url, server.served_name
    try:
        rate, seconds, _ = run_campaign("vllm", args, learner={
            "kind": "openai", "model": name, "base_url": base_url,
            "max_concurrency": args.concurrency})
    finally:
        if server is not None:
            server.stop()
    figures["vllm_items_min"] = round(rate, 2)
    figures.update({f"vllm_{stage}_s": value for stage, value in seconds.items()})
    figures["ratio"] = round(figures["vllm_items_min"] / figures["inprocess_items_min"], 2)
    result = {"inprocess_items_min": figures.pop("inprocess_items_min"),
              "vllm_items_min": figures.pop("vllm_items_min"), "ratio": figures.pop("ratio"),
              **figures, "budget": args.budget,
              "load_average_1min": round(os.getloadavg()[0], 2)}
    met = result["ratio"] >= 2 and result["inprocess_items_min"] >= 40
    print(f"Goals (ratio >= 2, in-process >= 40 items/min): {'met' if met else 'not met'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
