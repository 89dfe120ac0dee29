"""Fine-tune a project's learner from the shell: snapshot the curated labels, train, evaluate.

    manage.py train --project demo --method dpo --max-steps 20 --eval-budget 16

By default the run executes in this process (with the same job code the worker runs) and the
command prints the log and the held-out comparison; `--enqueue` leaves it to `manage.py worker`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alignment_core.training.settings import add_arguments, values_from_args
from annotator.management.lookups import project_named, user_named
from annotator.models import DatasetSnapshot, JobStatus, Project, TrainingRun
from annotator.services.learners import learner_promote
from annotator.services.snapshots import SnapshotFilters, snapshot_create
from annotator.services.training import TRAINING_SETTINGS, TrainingSettings, training_launch


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = "Snapshot curated labels and fine-tune a LoRA adapter (SFT, DPO or SFT then DPO)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--snapshot", type=int, help="an existing snapshot id (default: "
                            "freeze the current curated labels into a new snapshot)")
        parser.add_argument("--campaign", type=int, help="snapshot filter: one campaign id")
        parser.add_argument("--category", default="", help="snapshot filter: one category")
        parser.add_argument("--min-agreement", type=float, help="snapshot filter: 0..1")
        parser.add_argument("--adjudicated-only", action="store_true")
        parser.add_argument("--validation-fraction", type=float, default=0.1)
        parser.add_argument("--split-seed", type=int, default=0)
        # Every run setting the form and the API offer, from the same declarations.
        add_arguments(parser, TRAINING_SETTINGS)
        parser.add_argument("--user", default="", help="username recorded as the launcher")
        parser.add_argument("--enqueue", action="store_true",
                            help="only enqueue the run for `manage.py worker`")
        parser.add_argument("--promote", action="store_true",
                            help="promote the candidate when the run succeeds")

    def handle(self, *args, **o) -> None:
        project = project_named(o["project"])
        user = user_named(o["user"])
        try:
            snapshot = self._snapshot(project, user, o)
            settings = TrainingSettings(**values_from_args(TRAINING_SETTINGS, o))
            run = training_launch(project=project, snapshot=snapshot, settings=settings,
                                  created_by=user, enqueue=o["enqueue"])
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Training run {run.pk}: {run.get_method_display()} on snapshot "
                          f"{snapshot.pk} ({snapshot.content_hash[:12]}), base {run.base_version.name}")
        if o["enqueue"]:
            self.stdout.write("Enqueued; `manage.py worker` will run it.")
            return
        from annotator.tasks.training import training_job

        try:
            training_job.call(job_id=run.pk)
        except Exception as error:  # the job stored the error; show it and the log
            run.refresh_from_db()
            self.stdout.write(run.log)
            raise CommandError(f"Training run {run.pk} failed: {error}") from error
        run = TrainingRun.objects.select_related("output_version").get(pk=run.pk)
        self.stdout.write(run.log)
        self._report(run)
        if run.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Training run {run.pk} ended {run.status}.")
        if o["promote"] and run.output_version:
            learner_promote(version=run.output_version, user=user)
            self.stdout.write(self.style.SUCCESS(f"Promoted {run.output_version.name}."))

    def _snapshot(self, project: Project, user, o) -> DatasetSnapshot:
        if o["snapshot"]:
            snapshot = DatasetSnapshot.objects.filter(project=project, pk=o["snapshot"]).first()
            if snapshot is None:
                raise CommandError(f"No snapshot {o['snapshot']} in {project.slug}.")
            return snapshot
        filters = SnapshotFilters(campaign_id=o["campaign"], category=o["category"],
                                  min_agreement=o["min_agreement"],
                                  adjudicated_only=o["adjudicated_only"])
        snapshot = snapshot_create(project=project, name="manage.py train", created_by=user,
                                   filters=filters, validation_fraction=o["validation_fraction"],
                                   seed=o["split_seed"])
        self.stdout.write(f"Snapshot {snapshot.pk}: {snapshot.item_count} items, "
                          f"{snapshot.pair_count} pairs, {snapshot.sft_count} SFT examples "
                          f"({snapshot.train_count} train / {snapshot.validation_count} validation)")
        return snapshot

    def _report(self, run: TrainingRun) -> None:
        for name, value in sorted((run.metrics or {}).items()):
            self.stdout.write(f"  {name}: {value}")
        summary = (run.evaluation or {}).get("summary")
        if not summary:
            return
        base, candidate = summary["base"], summary["candidate"]
        self.stdout.write(f"Held-out evaluation ({run.evaluation.get('n_attacks')} attacks):")
        for label, side in (("base", base), ("candidate", candidate)):
            self.stdout.write(
                f"  {label:9} attack success {_percent(side['asr'])} "
                f"[{_percent(side['asr_lo'])}, {_percent(side['asr_hi'])}] of {side['asr_n']}; "
                f"over-refusal {_percent(side['over_refusal'])} of {side['over_refusal_n']}")
