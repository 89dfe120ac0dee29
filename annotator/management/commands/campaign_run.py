"""Launch a red-team campaign from the command line: in the foreground with progress bars, or
enqueued for the worker (--enqueue). `--resume ID` continues a failed or cancelled one."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.management.lookups import project_named, user_named
from annotator.models import Campaign, JobStatus, LearnerVersion, Project


def _csv(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Command(BaseCommand):
    help = ("Run a red-team campaign (attack -> respond -> critique -> review items) against a "
            "project's learner. Runs in the foreground with progress bars unless --enqueue.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument("--strategies", default="direct,roleplay,hypothetical",
                            help="Comma-separated strategy names (default: %(default)s).")
        parser.add_argument("--categories", default="",
                            help="Comma-separated categories (default: all).")
        parser.add_argument("--budget", type=int, default=16, help="Number of attacks.")
        parser.add_argument("--samples", type=int, default=1, help="Responses per attack.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default="")
        parser.add_argument("--learner", default="",
                            help="Learner version name (default: the active one).")
        parser.add_argument("--held-out", action="store_true",
                            help="Measure only: the items never feed training.")
        parser.add_argument("--user", default="", help="Username recorded as the launcher.")
        parser.add_argument("--enqueue", action="store_true",
                            help="Hand the campaign to the worker instead of running it here.")
        parser.add_argument("--resume", type=int, metavar="ID",
                            help="Resume the failed or cancelled campaign with this id instead.")

    def handle(self, *args, **options) -> None:
        from annotator.services.campaigns import campaign_launch
        from annotator.services.jobs import job_resume

        project = project_named(options["project"])
        try:
            if options["resume"]:
                campaign = Campaign.objects.filter(project=project, pk=options["resume"]).first()
                if campaign is None:
                    raise CommandError(f"No campaign {options['resume']} in {project.slug}.")
                if options["enqueue"]:
                    campaign = job_resume(job=campaign)
                elif not campaign.can_resume:
                    raise CommandError("Only a failed or cancelled campaign can be resumed.")
            else:
                campaign = campaign_launch(
                    project=project, user=user_named(options["user"]), name=options["name"],
                    learner_version=self._learner(project, options["learner"]),
                    strategies=_csv(options["strategies"]),
                    categories=_csv(options["categories"]), budget=options["budget"],
                    samples_per_attack=options["samples"], seed=options["seed"],
                    held_out=options["held_out"], enqueue=options["enqueue"])
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        if options["enqueue"]:
            self.stdout.write(self.style.SUCCESS(
                f"Campaign {campaign.pk} ({campaign.name}) is queued; `manage.py worker` runs it."))
            return
        self.run_foreground(campaign)

    def run_foreground(self, campaign: Campaign) -> None:
        from tqdm import tqdm

        from annotator.models import STAGE_LABELS
        from annotator.services.campaign_runner import campaign_execute
        from annotator.services.jobs import job_prepare_resume

        if campaign.can_resume:
            job_prepare_resume(job=campaign)
        self.stdout.write(f"Campaign {campaign.pk}: {campaign.name}")
        bars: dict[str, tqdm] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                for other in bars.values():
                    other.close()
                bars[stage] = tqdm(total=total, initial=done, desc=STAGE_LABELS[stage],
                                   unit="item", file=self.stderr._out, dynamic_ncols=True)
                return
            bar.total = total
            bar.update(done - bar.n)

        try:
            campaign_execute(campaign=campaign, on_progress=on_progress)
        except KeyboardInterrupt:
            # Ctrl+C: record it as cancelled so the campaign can be resumed later.
            from annotator.services.jobs import job_finish

            job_finish(job=campaign, status=JobStatus.CANCELLED, error="Interrupted (Ctrl+C).")
            raise CommandError(f"Interrupted; resume with --resume {campaign.pk}.") from None
        finally:
            for bar in bars.values():
                bar.close()
        campaign.refresh_from_db()
        if campaign.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Campaign {campaign.pk} {campaign.status}: {campaign.error}")
        review = campaign.report.get("review", {})
        overall = campaign.report.get("asr", {}).get("overall", {})
        self.stdout.write(self.style.SUCCESS(
            f"Campaign {campaign.pk} finished: {campaign.report.get('n_attacks', 0)} attacks, "
            f"attack success {overall.get('rate', 0):.0%} "
            f"(95% CI {overall.get('lo', 0):.0%}-{overall.get('hi', 0):.0%}), "
            f"{review.get('human_items', 0)} items for experts, "
            f"{review.get('auto_accepted', 0)} auto-accepted."))

    def _learner(self, project: Project, name: str) -> LearnerVersion | None:
        if not name:
            return None
        version = LearnerVersion.objects.filter(project=project, name=name).first()
        if version is None:
            raise CommandError(f"No learner version {name!r} in {project.slug}.")
        return version
