"""Seed data for the throwaway deployments of scripts/live_server.py, as a command line that runs
inside the deployment's environment (its database, its settings):

    python scripts/live_seed.py seed-review --experts 50 --items 5000 --overlap 1

prints one JSON object: the project slug, the experts' names and API keys, the item ids. The
other commands seed a training run or a campaign, resume a job, count reviews and enqueue
tasks; `live_server.seed(env, ...)` runs them and returns the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = "scripts.live_settings"


def _seed_review(*, experts: int, items: int, overlap: int, slug: str, tokens: bool) -> dict:
    """A project with `experts` experts (and API keys) and `items` pending review items."""
    from django.db import transaction

    from annotator.models import Role
    from annotator.services.projects import membership_set, project_create, user_ensure
    from annotator.services.tokens import token_create
    from tests.factories import PASSWORD, make_review_item

    with transaction.atomic():
        project = project_create(name=f"Live {slug}", slug=slug, reviews_per_item=overlap)
        names, keys = [], []
        for number in range(experts):
            user = user_ensure(username=f"{slug}-expert{number}", password=PASSWORD)
            membership_set(project=project, user=user, role=Role.EXPERT)
            names.append(user.username)
            if tokens:
                keys.append(token_create(user=user, name="live").key)
        item_ids = [make_review_item(project, query=f"Attack {n}: how do I pick a lock?").pk
                    for n in range(items)]
    return {"slug": slug, "experts": names, "keys": keys, "items": item_ids}


def _seed_training(*, slug: str, max_steps: int) -> dict:
    """A project with curated items, a snapshot and a queued DPO run of `max_steps` steps."""
    from annotator.services.projects import project_create
    from annotator.services.snapshots import snapshot_create
    from annotator.services.training import TrainingSettings, training_launch
    from tests.training_factories import curate_many

    project = project_create(name=f"Live {slug}", slug=slug)
    curate_many(project, 6)
    snapshot = snapshot_create(project=project, name="crash", validation_fraction=0.34)
    settings = TrainingSettings(method="dpo", lora_r=4, lora_alpha=8, batch_size=1,
                                max_length=64, epochs=100, max_steps=max_steps,
                                checkpoint_every=5, eval_budget=0)
    run = training_launch(project=project, snapshot=snapshot, settings=settings)
    return {"slug": slug, "run": run.pk, "adapter_dir": str(run.adapter_dir())}


def _seed_campaign(*, slug: str, budget: int) -> dict:
    """A project with a queued campaign of `budget` direct attacks."""
    from annotator.services.campaigns import campaign_launch
    from annotator.services.projects import project_create

    project = project_create(name=f"Live {slug}", slug=slug)
    campaign = campaign_launch(project=project, strategies=["direct"], budget=budget, seed=1)
    return {"slug": slug, "campaign": campaign.pk}


def _resume(*, kind: str, pk: int) -> dict:
    """Resume a failed job through its service, as the Resume button does."""
    from annotator.models import Campaign, TrainingRun
    from annotator.services.jobs import job_resume

    model = TrainingRun if kind == "training" else Campaign
    job = job_resume(job=model.objects.get(pk=pk))
    return {"kind": kind, "id": job.pk, "status": job.status}


def _count_reviews(*, slug: str) -> dict:
    """The decisions stored for the project (to compare with what clients were told)."""
    from annotator.models import Review, ReviewAction

    decisions = Review.objects.filter(item__project__slug=slug).exclude(action=ReviewAction.UNDO)
    return {"slug": slug, "reviews": decisions.count()}


def _enqueue(*, task_path: str, count: int, kwargs: dict) -> dict:
    """Enqueue `count` runs of the task at `task_path`, each with its index as `n`."""
    import importlib

    module, _, name = task_path.rpartition(".")
    task = getattr(importlib.import_module(module), name)
    ids = [str(task.enqueue(n=n, **kwargs).id) for n in range(count)]
    return {"task_ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    review = commands.add_parser("seed-review", help="a project with experts and pending items")
    review.add_argument("--experts", type=int, default=2)
    review.add_argument("--items", type=int, default=10)
    review.add_argument("--overlap", type=int, default=1)
    review.add_argument("--slug", default="live")
    review.add_argument("--tokens", action="store_true", help="give every expert an API key")
    enqueue = commands.add_parser("enqueue", help="enqueue many runs of one task")
    enqueue.add_argument("--task", required=True, help="dotted path of a @task function")
    enqueue.add_argument("--count", type=int, default=1)
    enqueue.add_argument("--kwargs", default="{}", help="JSON keyword arguments for every run")
    training = commands.add_parser("seed-training", help="a queued LoRA training run")
    training.add_argument("--slug", default="train")
    training.add_argument("--max-steps", type=int, default=100)
    campaign = commands.add_parser("seed-campaign", help="a queued red-team campaign")
    campaign.add_argument("--slug", default="redteam")
    campaign.add_argument("--budget", type=int, default=32)
    resume = commands.add_parser("resume", help="resume a failed training run or campaign")
    resume.add_argument("kind", choices=["training", "campaign"])
    resume.add_argument("id", type=int)
    count = commands.add_parser("count-reviews", help="how many decisions a project has")
    count.add_argument("--slug", required=True)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    if args.command == "seed-review":
        result = _seed_review(experts=args.experts, items=args.items, overlap=args.overlap,
                              slug=args.slug, tokens=args.tokens)
    elif args.command == "seed-training":
        result = _seed_training(slug=args.slug, max_steps=args.max_steps)
    elif args.command == "seed-campaign":
        result = _seed_campaign(slug=args.slug, budget=args.budget)
    elif args.command == "resume":
        result = _resume(kind=args.kind, pk=args.id)
    elif args.command == "count-reviews":
        result = _count_reviews(slug=args.slug)
    elif args.command == "enqueue":
        result = _enqueue(task_path=args.task, count=args.count, kwargs=json.loads(args.kwargs))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
