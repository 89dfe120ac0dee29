"""Run a background worker: recover jobs whose worker died, then process the task queue."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotator.queue_backends import worker_command
from annotator.services.jobs import jobs_recover_stale


class Command(BaseCommand):
    help = ("Mark jobs of dead workers failed (resumable), then process the task queue: "
            "django-tasks-db's db_worker, or an RQ worker with TASKS_BACKEND=rq.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", action="store_true", help="Exit when the queue is empty.")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="Seconds between polls of the database queue (RQ blocks instead).")

    def handle(self, *args, batch: bool = False, interval: float = 1.0, **options) -> None:
        if settings.TORCH_THREADS:
            import torch

            torch.set_num_threads(settings.TORCH_THREADS)
        for job in jobs_recover_stale():
            self.stdout.write(self.style.WARNING(f"Recovered dead job: {job}"))
        self.stdout.flush()  # before the worker blocks: whoever reads the log sees it now
        command, worker_args = worker_command(batch=batch, interval=interval)
        call_command(command, *worker_args)
