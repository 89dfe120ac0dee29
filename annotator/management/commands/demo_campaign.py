"""Give the demo project one finished red-team campaign, so there are items to review at once."""

from django.core.management.base import BaseCommand, CommandError

from annotator.services.demo import demo_campaign


class Command(BaseCommand):
    help = ("Run the demo project's first campaign on the real model (about a minute); "
            "does nothing when the demo project already has a finished campaign.")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        from annotator.models import STAGE_LABELS

        bars: dict = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                bars[stage] = tqdm(total=total, initial=done, desc=STAGE_LABELS[stage],
                                   unit="item", file=self.stderr._out)
                return
            bars[stage].total = total
            bars[stage].update(done - bars[stage].n)

        try:
            campaign, ran = demo_campaign(on_progress=on_progress)
        except Exception as error:
            raise CommandError(f"The demo campaign failed ({error}); `make run` will try to "
                               "resume it next time.") from error
        finally:
            for bar in bars.values():
                bar.close()
        if not ran:
            self.stdout.write(f"Demo campaign: {campaign.name} already finished.")
            return
        review = (campaign.report or {}).get("review", {})
        self.stdout.write(self.style.SUCCESS(
            f"Demo campaign {campaign.status}: {review.get('human_items', 0)} items to review, "
            f"{review.get('auto_accepted', 0)} auto-accepted."))
