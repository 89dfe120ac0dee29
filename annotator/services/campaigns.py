"""Red-team campaigns: launch one, or enqueue one whose rows were imported.

Cancel and resume are the shared `job_cancel` / `job_resume` (annotator.services.jobs); the
stages the job runs are in annotator.services.campaign_runner, review items in
annotator.services.review_items.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import Campaign, JobStatus, LearnerVersion, Project
from annotator.services.jobs import job_enqueue, job_prepare_resume

MAX_BUDGET = 10_000
MAX_SAMPLES = 8


def known_strategies() -> list[str]:
    from alignment_core.attacker import STRATEGIES

    return sorted(STRATEGIES)


def known_categories(project: Project | None = None) -> list[str]:
    """The behaviour categories plus "canary" (the objectives a string check can verify), then
    the categories the project adopted from discovered risks."""
    from alignment_core.attacker import CANARY_CATEGORY, categories
    from annotator.selectors.risks import adopted_categories

    adopted = (list(adopted_categories(project=project).values_list("name", flat=True))
               if project is not None else [])
    return [*categories(), CANARY_CATEGORY, *adopted]


# -- launch ---------------------------------------------------------------------------------


def _validate_choice(values: Sequence[str], known: Sequence[str], field: str,
                     allow_empty: bool) -> list[str]:
    values = [str(v).strip() for v in values if str(v).strip()]
    if not values and not allow_empty:
        raise ValidationError({field: "Pick at least one."})
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationError({field: f"Unknown: {', '.join(unknown)}. Known: {', '.join(known)}."})
    return list(dict.fromkeys(values))


@transaction.atomic
def campaign_launch(*, project: Project, user=None, name: str = "",
                    learner_version: LearnerVersion | None = None, strategies: Sequence[str],
                    categories: Sequence[str] = (), budget: int, samples_per_attack: int = 1,
                    seed: int = 0, held_out: bool = False, enqueue: bool = True) -> Campaign:
    """Create a campaign against a learner version (the active one by default) and enqueue its
    job once the transaction commits. Only admins may launch; the views check that.

    `enqueue=False` leaves the campaign QUEUED without a task, for `manage.py campaign_run`,
    which runs it in the foreground.
    """
    if learner_version is None:
        learner_version = LearnerVersion.objects.filter(
            project=project, status=LearnerVersion.Status.ACTIVE).first()
        if learner_version is None:
            raise ValidationError({"learner_version": "The project has no active learner."})
    elif learner_version.project_id != project.pk:
        raise ValidationError({"learner_version": "That learner belongs to another project."})
    strategies = _validate_choice(strategies, known_strategies(), "strategies", allow_empty=False)
    categories = _validate_choice(categories, known_categories(project), "categories",
                                  allow_empty=True)
    if not 1 <= int(budget) <= MAX_BUDGET:
        raise ValidationError({"budget": f"The budget must be between 1 and {MAX_BUDGET}."})
    if not 1 <= int(samples_per_attack) <= MAX_SAMPLES:
        raise ValidationError(
            {"samples_per_attack": f"Samples per attack must be between 1 and {MAX_SAMPLES}."})
    name = name.strip() or (f"{', '.join(strategies)} vs {learner_version.name} · "
                            f"{timezone.now():%Y-%m-%d %H:%M}")[:120]
    campaign = Campaign(project=project, learner_version=learner_version, name=name,
                        created_by=user if user is not None and user.is_authenticated else None,
                        strategies=strategies, categories=categories, budget=int(budget),
                        samples_per_attack=int(samples_per_attack), seed=int(seed),
                        held_out=bool(held_out))
    campaign.full_clean()
    campaign.save()
    if enqueue:
        job_enqueue(job=campaign)
    return campaign


@transaction.atomic
def campaign_enqueue_existing(*, campaign: Campaign) -> Campaign:
    """Enqueue a campaign whose attacks (and maybe responses) were imported.

    The stages skip what exists: attacks without responses are answered, responses without
    critiques are judged, critiques without items are queued.
    """
    if campaign.is_active and campaign.task_id:
        raise ValidationError("This campaign is already queued or running.")
    if campaign.status != JobStatus.QUEUED:
        job_prepare_resume(job=campaign)
    job_enqueue(job=campaign)
    return campaign
