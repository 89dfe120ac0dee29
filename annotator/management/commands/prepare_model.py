"""Convert the bundled learner model into the local cache once (make run calls this)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotator.learner_runtime import learner_model_dir


class Command(BaseCommand):
    help = "Resolve LEARNER_MODEL; for the bundled model, dequantize the GGUF into the cache once."

    def handle(self, *args, **options) -> None:
        try:
            path = learner_model_dir(progress=self.stdout.write)
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Learner model ready: {path} "
                                             f"(LEARNER_MODEL={settings.LEARNER_MODEL})"))
