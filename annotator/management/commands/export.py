"""Export a project's curated data (or a snapshot) in a trainer's format, in the foreground."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.export_filters import FILTER_KEYS
from annotator.management.lookups import project_named
from annotator.models import DatasetSnapshot, Export
from annotator.services.exports import export_to_path


class Command(BaseCommand):
    help = ("Write a project's curated rows (or a snapshot's examples) to a file: "
            "manage.py export --project demo --format trl_preference --out pairs.jsonl")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--format", required=True, choices=Export.Format.values)
        parser.add_argument("--out", required=True, type=Path, help="The file to write.")
        parser.add_argument("--snapshot", type=int, help="Export this snapshot's examples.")
        parser.add_argument("--no-provenance", action="store_true",
                            help="Leave out review ids, expert pseudonyms, critic, campaign, ...")
        parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                            help=f"Repeatable; keys: {', '.join(FILTER_KEYS)}.")

    def handle(self, *args, **options) -> None:
        project = project_named(options["project"])
        snapshot = None
        if options["snapshot"] is not None:
            snapshot = DatasetSnapshot.objects.filter(project=project, pk=options["snapshot"]).first()
            if snapshot is None:
                raise CommandError(f"Project {project.slug} has no snapshot {options['snapshot']}.")
        filters = {}
        for item in options["filter"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--filter takes KEY=VALUE, not {item!r}.")
            filters[key.strip()] = value.strip()
        try:
            rows = export_to_path(project=project, fmt=options["format"], path=options["out"],
                                  filters=filters, snapshot=snapshot,
                                  include_provenance=not options["no_provenance"])
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows} rows to {options['out']}."))
