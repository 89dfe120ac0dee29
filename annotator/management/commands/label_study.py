"""Run a label-source study from the shell: critic-, expert- and mix-labelled candidates of one
snapshot, measured on the same held-out attacks, with PGR and expert minutes.

    manage.py label_study --project demo --snapshot 3 --mix-share 0.5 --method dpo --epochs 2

By default the study runs in this process (the same job code the worker runs) and the command
prints the results; `--enqueue` leaves it to `manage.py worker`; `--resume ID` continues a
failed or cancelled study.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alignment_core.training.settings import add_arguments, values_from_args
from annotator.management.lookups import project_named, user_named
from annotator.models import DatasetSnapshot, JobStatus, LabelStudy, Project
from annotator.selectors.studies import study_result_rows
from annotator.services.jobs import job_prepare_resume
from annotator.services.label_study import STUDY_SETTINGS, StudySettings, label_study_launch


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = ("Train candidates on critic, expert and mixed labels of one snapshot, measure them "
            "on the same held-out attacks, and report PGR and the expert minutes behind each.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--snapshot", type=int, help="the snapshot id (its train split's "
                            "expert-labelled items are the study's items)")
        parser.add_argument("--resume", type=int, metavar="ID",
                            help="continue the failed or cancelled study with this id instead")
        # Every setting the page and the API offer, from the same declarations.
        add_arguments(parser, STUDY_SETTINGS)
        parser.add_argument("--user", default="", help="username recorded as the launcher")
        parser.add_argument("--enqueue", action="store_true",
                            help="only enqueue the study for `manage.py worker`")

    def handle(self, *args, **o) -> None:
        project = project_named(o["project"])
        study = self._resume(project, o["resume"]) if o["resume"] else self._launch(project, o)
        if o["enqueue"]:
            self.stdout.write(f"Study {study.pk} is queued; `manage.py worker` runs it.")
            return
        from annotator.tasks.studies import label_study_job

        self.stdout.write(f"Study {study.pk}: {study.name} ({study.results.get('items')} items, "
                          f"mix {study.mix_share:.0%} expert)")
        try:
            label_study_job.call(job_id=study.pk)
        except Exception as error:  # the job stored the error
            raise CommandError(f"Study {study.pk} failed: {error}") from error
        study.refresh_from_db()
        self._report(study)
        if study.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Study {study.pk} ended {study.status}; resume it with "
                               f"--resume {study.pk}.")

    def _launch(self, project: Project, o) -> LabelStudy:
        if not o["snapshot"]:
            raise CommandError("Name the snapshot (--snapshot ID) or a study to --resume.")
        snapshot = DatasetSnapshot.objects.filter(project=project, pk=o["snapshot"]).first()
        if snapshot is None:
            raise CommandError(f"No snapshot {o['snapshot']} in {project.slug}.")
        user = user_named(o["user"])
        try:
            return label_study_launch(
                project=project, snapshot=snapshot, created_by=user, enqueue=o["enqueue"],
                settings=StudySettings(**values_from_args(STUDY_SETTINGS, o)))
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error

    def _resume(self, project: Project, pk: int) -> LabelStudy:
        study = LabelStudy.objects.filter(project=project, pk=pk).first()
        if study is None:
            raise CommandError(f"No study {pk} in {project.slug}.")
        if not study.can_resume:
            raise CommandError("Only a failed or cancelled study can be resumed.")
        job_prepare_resume(job=study)
        return study

    def _report(self, study: LabelStudy) -> None:
        report = (study.results or {}).get("report") or {}
        self.stdout.write(f"Held-out attacks: {study.results.get('held_out', '—')}")
        self.stdout.write(f"  {'candidate':22} {'expert labels':>13} {'minutes':>8} "
                          f"{'attack success':>15} {'over-refusal':>13} {'PGR':>6}")
        for row in study_result_rows(study=study):
            labels = "—" if row["expert_labels"] is None else str(row["expert_labels"])
            minutes = "—" if row["expert_minutes"] is None else f"{row['expert_minutes']:.1f}"
            pgr = "—" if row["pgr"] is None else f"{row['pgr']:.2f}"
            self.stdout.write(f"  {row['label']:22} {labels:>13} {minutes:>8} "
                              f"{_percent(row['asr']):>15} {_percent(row['over_refusal']):>13} "
                              f"{pgr:>6}")
        if report:
            if report.get("pgr") is None:
                self.stdout.write(f"PGR of the critic's labels: undefined ({report['pgr_reason']})")
            else:
                self.stdout.write(f"PGR of the critic's labels: {report['pgr']:.2f}")
