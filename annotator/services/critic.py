"""Teach the critic from the experts: retrain its learned head on curated human decisions.

Each retrain fits the head (alignment_core.critic.head.train_head, which also fits the
confidence calibrator on its own cross-validated predictions, so confidence keeps meaning "the
probability the verdict is right" for this project), measures the whole fit on held-out folds
(alignment_core.critic.crossval), and stores the head on the project with one CriticRetrain
row: the learning curve's point (labels, held-out accuracy, ECE). Retraining is started by the
project page's button, the API, `manage.py retrain_critic`, or automatically
(services/critic_learning.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from alignment_core.critic.base import CritiqueInput
from annotator.models import (
    AttackQuery,
    CriticRetrain,
    ItemState,
    Project,
    Review,
    ReviewItem,
)
from annotator.services.jobs import task_enqueue


def critique_input_for(*, attack: AttackQuery, response_text: str) -> CritiqueInput:
    """What the critic is given for one answer: both texts and the attacker's real knowledge
    (AttackQuery.critic_evidence), the same in campaigns, evaluations and retraining."""
    return CritiqueInput(query=attack.text, response=response_text, **attack.critic_evidence())


@dataclass
class TrainingSet:
    """The experts' decisions as the head's training data."""

    examples: list[tuple[CritiqueInput, str]]  # (critic input, expert verdict)
    # Per example, the extra voters' stored votes (Critique.signals["votes"]: {voter: probs});
    # None when no voter ever voted, so the head learns no voter weights.
    votes: list[dict] | None
    through: int  # the newest Review id of the project when the set was read


def latest_review_id(*, project: Project) -> int:
    return (Review.objects.filter(item__project=project).order_by("-id")
            .values_list("id", flat=True).first() or 0)


def critic_training_set(*, project: Project) -> TrainingSet:
    """Every item curated by humans, with its votes; auto-accepted items are left out on purpose.

    An auto-accepted label is the critic's own verdict: learning from it would only teach the
    critic to agree with itself. `through` is read first, so a decision that lands while the
    items are read is counted again towards the next retrain rather than missed.
    """
    through = latest_review_id(project=project)
    items = (ReviewItem.objects.filter(project=project, state=ItemState.DONE)
             .exclude(final_verdict="")
             .select_related("critique__response__attack")
             .order_by("id"))
    examples, votes = [], []
    for item in items.iterator(chunk_size=500):
        response = item.critique.response
        examples.append((critique_input_for(attack=response.attack, response_text=response.text),
                         item.final_verdict))
        votes.append((item.critique.signals or {}).get("votes") or {})
    return TrainingSet(examples=examples, votes=votes if any(votes) else None, through=through)


def critic_training_examples(*, project: Project) -> list[tuple[CritiqueInput, str]]:
    """(critic input, expert verdict) for every item curated by humans."""
    return critic_training_set(project=project).examples


def critic_head_retrain(*, project: Project,
                        trigger: str = CriticRetrain.Trigger.MANUAL) -> dict:
    """Fit a new head, measure it on held-out folds, store both; a summary for pages and API.

    With too few decisions (or only one verdict) the current head is kept and the summary says
    why, so admins know how many more reviews are needed. Two retrains that overlap (the button
    during an automatic one) both fit; the one that saw fewer decisions does not overwrite the
    other's head.
    """
    from alignment_core.critic.crossval import cross_validate_head
    from alignment_core.critic.head import MIN_EXAMPLES, train_head

    started = time.monotonic()
    data = critic_training_set(project=project)
    head = train_head(data.examples, votes=data.votes)
    if head is None:
        return {"trained": False, "examples": len(data.examples), "needed": MIN_EXAMPLES,
                "reason": f"needs at least {MIN_EXAMPLES} expert decisions with two or more "
                          f"different verdicts (has {len(data.examples)})"}
    scores = cross_validate_head(data.examples, votes=data.votes, C=head.C)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.critic_trained_through > data.through:
            return {"trained": False, "examples": len(data.examples),
                    "reason": "a retrain on newer decisions finished first; its head is kept"}
        locked.critic_head = {**head.to_dict(), "trained_at": timezone.now().isoformat(),
                              "holdout_accuracy": scores.accuracy, "holdout_ece": scores.ece}
        locked.critic_trained_through = data.through
        locked.save(update_fields=["critic_head", "critic_trained_through"])
        point = CriticRetrain.objects.create(
            project=locked, trigger=trigger, labels=len(data.examples), accuracy=scores.accuracy,
            ece=scores.ece, calibration=head.calibrator.method, fingerprint=head.fingerprint(),
            trained_through=data.through, seconds=round(time.monotonic() - started, 2))
    project.refresh_from_db(fields=["critic_head", "critic_trained_through"])
    return {"trained": True, "examples": len(data.examples), "fingerprint": head.fingerprint(),
            "accuracy": point.accuracy, "ece": point.ece, "voters": dict(head.voters)}


def critic_head_retrain_enqueue(*, project: Project) -> None:
    """The retrain button and the API: fit now, in the background."""
    task_enqueue("annotator.tasks.critic.retrain_critic_head", project_id=project.pk,
                 trigger=CriticRetrain.Trigger.MANUAL.value)
