"""Run a background worker: recover jobs whose worker died, then process the task queue."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotator.services.jobs import jobs_recover_stale, worker_identity


class Command(BaseCommand):
    help = "Mark jobs of dead workers failed (resumable), then run django-tasks-db's db_worker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", action="store_true", help="Exit when the queue is empty.")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, batch: bool = False, interval: float = 1.0, **options) -> None:
        if settings.TORCH_THREADS:
            import torch

            torch.set_num_threads(settings.TORCH_THREADS)
        for job in jobs_recover_stale():
            self.stdout.write(self.style.WARNING(f"Recovered dead job: {job}"))
        worker_args = ["--worker-id", worker_identity(), "--interval", str(interval)]
        if batch:
            worker_args.append("--batch")
        call_command("db_worker", *worker_args)
