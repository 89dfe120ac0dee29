"""One whole round of the loop on the real model, from the shell:

    campaign -> every critique approved -> snapshot -> fine-tune -> held-out attacks, before/after

    manage.py demo_round --budget 48 --method sft_dpo --epochs 2 --eval-budget 32

It chains the commands a user would run (`campaign_run`, then the review queue, then `train`),
with one stand-in: an expert who approves every critique, so the model learns the critic's own
revisions without a human check. That is fine for a demo or a smoke check of the whole loop on a
fresh install, never for real training data, so the expert is named explicitly (`--expert`).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alignment_core.training import METHODS
from annotator.access import role_of
from annotator.models import Project, ReviewAction, Role
from annotator.models.projects import ROLE_RANK
from annotator.services.review import review_claim_next, review_submit


class Command(BaseCommand):
    help = ("Run a red-team campaign, approve every critique as --expert, fine-tune on the "
            "curated labels and compare held-out attack success before and after.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", default="demo", help="project slug (default: demo)")
        parser.add_argument("--expert", required=True,
                            help="the expert (username) recorded as approving every critique")
        parser.add_argument("--budget", type=int, default=48, help="attacks in the campaign")
        parser.add_argument("--strategies",
                            default="direct,roleplay,hypothetical,refusal_suppression")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--method", choices=METHODS, default="sft_dpo")
        parser.add_argument("--epochs", type=int, default=2)
        parser.add_argument("--max-steps", type=int, default=None)
        parser.add_argument("--eval-budget", type=int, default=32,
                            help="held-out attacks for the before/after comparison")
        parser.add_argument("--promote", action="store_true",
                            help="make the candidate the active learner when it finishes")

    def handle(self, *args, **o) -> None:
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {o['project']!r}; `make run` creates demo.")
        expert = get_user_model().objects.filter(username=o["expert"]).first()
        role = role_of(expert, project) if expert is not None else None
        if role is None or ROLE_RANK[role] < ROLE_RANK[Role.EXPERT]:
            raise CommandError(f"{o['expert']!r} is not an expert of {project.slug}.")

        self.stdout.write(self.style.MIGRATE_HEADING("1. Red-team campaign"))
        call_command("campaign_run", project.slug, budget=o["budget"],
                     strategies=o["strategies"], seed=o["seed"],
                     name=f"demo_round seed {o['seed']}", stdout=self.stdout, stderr=self.stderr)

        self.stdout.write(self.style.MIGRATE_HEADING(f"2. {expert} approves every critique"))
        approved = self._approve_all(project, expert)
        self.stdout.write(f"Approved {approved} items.")

        self.stdout.write(self.style.MIGRATE_HEADING("3. Snapshot, fine-tune, evaluate"))
        call_command("train", project=project.slug, method=o["method"], epochs=o["epochs"],
                     max_steps=o["max_steps"], eval_budget=o["eval_budget"],
                     promote=o["promote"], user=expert.username,
                     stdout=self.stdout, stderr=self.stderr)

    def _approve_all(self, project: Project, expert) -> int:
        approved = 0
        while (item := review_claim_next(project=project, expert=expert)) is not None:
            try:
                review_submit(item=item, expert=expert, action=ReviewAction.APPROVE)
            except ValidationError as error:  # taken by someone else meanwhile: move on
                self.stderr.write(f"Item {item.pk}: {'; '.join(error.messages)}")
                continue
            approved += 1
        return approved
