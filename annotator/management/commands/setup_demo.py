"""Create or refresh the demo users and project (idempotent)."""

from django.core.management.base import BaseCommand

from annotator.services.demo import demo_credentials, demo_setup


class Command(BaseCommand):
    help = "Create the demo admin, expert and project; passwords come from DEMO_* env vars."

    def handle(self, *args, **options) -> None:
        credentials = demo_credentials()
        project = demo_setup(credentials=credentials)
        self.stdout.write(self.style.SUCCESS(f"Demo project: {project.name} (/p/{project.slug}/)"))
        self.stdout.write(f"  admin : {credentials.admin_username} / {credentials.admin_password}")
        self.stdout.write(f"  expert: {credentials.expert_username} / {credentials.expert_password}")
