"""Teach the critic from the experts: retrain its learned head on curated human decisions."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from alignment_core.critic.base import CritiqueInput
from annotator.models import ItemState, Project, ReviewItem
from annotator.services.jobs import task_enqueue


def critic_training_examples(*, project: Project) -> list[tuple[CritiqueInput, str]]:
    """(critic input, expert verdict) for every item curated by humans.

    Auto-accepted items are left out on purpose: their label is the critic's own verdict, and
    learning from it would only teach the critic to agree with itself.
    """
    return [example for example, _ in _training_rows(project)]


def _training_rows(project: Project) -> list[tuple[tuple[CritiqueInput, str], dict]]:
    """Each training example with the extra voters' votes stored on its critique (e.g. the
    judge's): {voter name: probabilities}, empty when none voted."""
    items = (ReviewItem.objects.filter(project=project, state=ItemState.DONE)
             .exclude(final_verdict="")
             .select_related("critique__response__attack")
             .order_by("id"))
    rows = []
    for item in items.iterator(chunk_size=500):
        response = item.critique.response
        attack = response.attack
        rows.append(((CritiqueInput(
            query=attack.text, response=response.text, category=attack.category,
            behaviour_id=attack.behaviour_id, is_benign=attack.is_benign,
            canary_id=attack.canary_id or None, severity_hint=attack.severity,
        ), item.final_verdict), (item.critique.signals or {}).get("votes") or {}))
    return rows


def critic_head_retrain(*, project: Project) -> dict:
    """Fit a new head and store it on the project; returns a summary for the page and API.

    With too few decisions (or only one verdict) the current head is kept, and the summary
    says why, so admins know how many more reviews are needed.
    """
    from alignment_core.critic.head import MIN_EXAMPLES, train_head

    rows = _training_rows(project)
    examples, votes = [example for example, _ in rows], [vote for _, vote in rows]
    # A voter's weight (the judge's) is learned from the items it voted on, like the head's.
    head = train_head(examples, votes=votes if any(votes) else None)
    if head is None:
        return {"trained": False, "examples": len(examples), "needed": MIN_EXAMPLES,
                "reason": f"needs at least {MIN_EXAMPLES} expert decisions with two or more "
                          f"different verdicts (has {len(examples)})"}
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        locked.critic_head = {**head.to_dict(), "trained_at": timezone.now().isoformat()}
        locked.save(update_fields=["critic_head"])
    project.refresh_from_db(fields=["critic_head"])
    return {"trained": True, "examples": len(examples), "fingerprint": head.fingerprint(),
            "voter_weights": {name: round(float(w), 4) for name, w in head.voters.items()}}


def critic_head_retrain_enqueue(*, project: Project) -> None:
    task_enqueue("annotator.tasks.critic.retrain_critic_head", project_id=project.pk)
