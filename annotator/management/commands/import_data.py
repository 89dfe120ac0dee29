"""Import prompts, prompt/response pairs or HH-RLHF transcripts into a project, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.management.lookups import project_named
from annotator.services.imports import IMPORT_KINDS, ImportFileError, import_file


class Command(BaseCommand):
    help = ("Import a file: manage.py import_data --project demo --kind prompts|pairs|hh FILE. "
            "Nothing is written unless every row is valid.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--kind", required=True, choices=list(IMPORT_KINDS))
        parser.add_argument("file", type=Path)

    def handle(self, *args, **options) -> None:
        project = project_named(options["project"])
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            with open(path, "rb") as stream:
                result = import_file(project=project, user=None, kind=options["kind"],
                                     filename=path.name, stream=stream)
        except ImportFileError as error:
            raise CommandError("Nothing was imported:\n" + "\n".join(error.problems)) from None
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        message = f"Imported {result.rows} {result.kind} rows into campaign {result.campaign}"
        if result.items:
            message += f" ({result.items} curated items)"
        elif result.campaign:
            message += "; its job (respond/critique/queue) was enqueued"
        self.stdout.write(self.style.SUCCESS(message + "."))
