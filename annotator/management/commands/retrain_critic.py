"""Retrain a project's critic head from its experts' decisions, in the foreground."""

from django.core.management.base import BaseCommand

from annotator.management.lookups import project_named
from annotator.models import CriticRetrain
from annotator.services.critic import critic_head_retrain


class Command(BaseCommand):
    help = "Fit the critic's learned head on the project's human-curated labels."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args, project: str, **options) -> None:
        target = project_named(project)
        summary = critic_head_retrain(project=target, trigger=CriticRetrain.Trigger.COMMAND)
        if summary["trained"]:
            held_out = ("" if summary["accuracy"] is None else
                        f"; held-out accuracy {summary['accuracy']:.3f}, ECE {summary['ece']:.3f}")
            self.stdout.write(self.style.SUCCESS(
                f"Critic head retrained on {summary['examples']} expert decisions "
                f"({summary['fingerprint']}{held_out})."))
        else:
            self.stdout.write(self.style.WARNING(f"Not retrained: {summary['reason']}."))
