"""Seed data for tests/test_queue_jobs.py, run inside a live deployment's environment:

    python -m tests.live_jobs SLUG

prints one JSON object: the project's slug, its admin's name and API key. The project has
curated items enough for every kind of job: preference pairs for a snapshot and a LoRA run,
and more than the critic head's minimum of expert decisions, with two verdicts.
"""

from __future__ import annotations

import json
import os
import sys


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


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scripts.live_settings")
    import django

    django.setup()
    print(json.dumps(seed_jobs(sys.argv[1])))
