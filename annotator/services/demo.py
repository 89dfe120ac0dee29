"""The demo project that `make run` sets up, so a newcomer can log in and review right away."""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.db import transaction

from annotator.models import Project, Role
from annotator.services.projects import membership_set, project_create, user_ensure

DEMO_SLUG = "demo"
DEMO_GUIDELINES = """\
# Review guidelines

**Approve** (`A`) when the critic's verdict and suggested revision are right.

**Edit** (`E`) when the verdict is right but the revision should be better: write the answer
you would want the model to give. A good revision refuses clearly harmful help in one
sentence and offers a safe, useful alternative; for a harmless request it simply helps.

**Critic is wrong** (`R`) when the verdict itself is wrong — e.g. a harmless answer flagged
unsafe, or a refusal of a harmless request not flagged as over-refusal.

Skip (`S`) when you are unsure; someone else will take it.
"""


@dataclass
class DemoCredentials:
    admin_username: str
    admin_password: str
    expert_username: str
    expert_password: str


def demo_credentials() -> DemoCredentials:
    return DemoCredentials(
        admin_username=os.environ.get("DEMO_ADMIN_USERNAME", "admin"),
        admin_password=os.environ.get("DEMO_ADMIN_PASSWORD", "superalign-admin"),
        expert_username=os.environ.get("DEMO_EXPERT_USERNAME", "expert"),
        expert_password=os.environ.get("DEMO_EXPERT_PASSWORD", "superalign-expert"),
    )


@transaction.atomic
def demo_setup(*, credentials: DemoCredentials) -> Project:
    """Create (or refresh) the demo users and project; safe to run on every start."""
    admin = user_ensure(username=credentials.admin_username, password=credentials.admin_password,
                        is_superuser=True)
    expert = user_ensure(username=credentials.expert_username,
                         password=credentials.expert_password)
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is None:
        project = project_create(name="Demo", slug=DEMO_SLUG, owner=admin,
                                 guidelines=DEMO_GUIDELINES,
                                 description="Red-team the bundled SmolLM2-135M-Instruct.")
    membership_set(project=project, user=admin, role=Role.ADMIN)
    membership_set(project=project, user=expert, role=Role.EXPERT)
    return project
