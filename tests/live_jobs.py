"""Live-deployment helpers for the queue tests, run inside the deployment's environment:

    python -m tests.live_jobs seed SLUG
    python -m tests.live_jobs task-results ID...

`seed` makes a project with curated items enough for every kind of job (preference pairs for a
snapshot and a LoRA run, and more than the critic head's minimum of expert decisions, with two
verdicts) and prints its slug, its admin's name and API key. `task-results` prints each task's
status and the workers that ran it, as the queue itself records them, whichever backend it is
(django-tasks-db's table, or Redis). `run(env, ...)` calls either from a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scripts.live_server import PYTHON, REPO


def seed_jobs(slug: str) -> dict:
    from django.db import transaction

    from annotator.models import Role
    from annotator.services.projects import membership_set, project_create, user_ensure
    from annotator.services.tokens import token_create
    from scripts.live_server import PASSWORD
    from tests.training_factories import UNSAFE_ANSWERS, curate, curate_many

    with transaction.atomic():
        project = project_create(name=f"Jobs {slug}", slug=slug)
        admin = user_ensure(username=f"{slug}-admin", password=PASSWORD)
        membership_set(project=project, user=admin, role=Role.ADMIN)
        key = token_create(user=admin, name="live").key
        curate_many(project, 12)  # unsafe answers the experts replaced: preference pairs
        for number in range(12):  # answers the experts kept as safe
            query, _, refusal = UNSAFE_ANSWERS[number % len(UNSAFE_ANSWERS)]
            curate(project, f"{query} ({number})", refusal, refusal, verdict="safe")
    return {"slug": slug, "admin": admin.username, "key": key}


def task_results(ids: list[str]) -> dict:
    from django_tasks import default_task_backend

    results = {}
    for task_id in ids:
        result = default_task_backend.get_result(task_id)
        results[task_id] = {"status": str(result.status), "worker_ids": list(result.worker_ids)}
    return results


def run(env: dict[str, str], *args: str) -> dict:
    """Run this module with `args` in the deployment's environment; return its JSON."""
    done = subprocess.run([PYTHON, "-m", "tests.live_jobs", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tests.live_jobs {' '.join(args)} failed:\n{done.stdout}\n"
                           f"{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scripts.live_settings")
    import django

    django.setup()
    command, *rest = sys.argv[1:]
    output = seed_jobs(rest[0]) if command == "seed" else task_results(rest)
    print(json.dumps(output))
