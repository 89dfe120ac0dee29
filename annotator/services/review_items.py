"""Review items: queue critiques for experts, with priority, auto-accept and the audit sample.

Review priority (higher is reviewed first):

    priority = (1 - critic confidence) + severity / 4

Both terms lie in [0, 1] and weigh the same: the items the critic is least sure about, and the
most harmful ones, reach experts first.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from annotator.models import REVISED_VERDICTS, Critique, ItemState, Project, ReviewItem


def item_priority(*, confidence: float, severity: int) -> float:
    """The queue order: (1 - confidence) + severity / 4 (see the module docstring)."""
    return round((1.0 - float(confidence)) + min(max(int(severity), 0), 4) / 4.0, 6)


def audit_draw(*, seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by the campaign seed and the item's identity.

    Seeding per item (not one generator walked in order) keeps the audit sample the same when a
    resumed job creates the remaining items in different batches.
    """
    return random.Random(f"audit:{seed}:{key}").random()


def final_response_for(*, verdict: str, response_text: str, suggested_revision: str) -> str:
    """The curated answer: the critic's revision where the original was wrong, else the original."""
    if verdict in REVISED_VERDICTS and suggested_revision.strip():
        return suggested_revision
    return response_text


def review_items_create(*, project: Project, critiques: Iterable[Critique],
                        seed: int = 0) -> list[ReviewItem]:
    """Queue critiques for review; auto-accept the confident ones except an audit sample.

    With `project.auto_accept_threshold` set, a critique at least that confident is curated at
    once (AUTO_ACCEPTED, the critic's verdict as the final label) unless its audit draw falls
    below `project.audit_rate`: then it goes to the experts flagged `is_audit`, and the
    experts' verdicts on those items measure whether the threshold is safe. Critiques that
    already have an item are skipped, so calling this twice creates nothing new.
    """
    threshold = project.auto_accept_threshold
    now = timezone.now()
    items = []
    for critique in critiques:
        response = critique.response
        attack = response.attack
        item = ReviewItem(project=project, critique=critique,
                          priority=item_priority(confidence=critique.confidence,
                                                 severity=critique.severity),
                          reviews_required=project.reviews_per_item)
        if threshold is not None and critique.confidence >= threshold:
            key = f"{attack.seq}:{response.sample_index}:{attack.text}"
            if audit_draw(seed=seed, key=key) < project.audit_rate:
                item.is_audit = True
            else:
                item.state = ItemState.AUTO_ACCEPTED
                item.final_verdict = critique.verdict
                item.final_severity = critique.severity
                item.final_response = final_response_for(
                    verdict=critique.verdict, response_text=response.text,
                    suggested_revision=critique.suggested_revision)
                item.curated_at = now
        items.append(item)
    with transaction.atomic():
        taken = set(ReviewItem.objects.filter(critique__in=[i.critique for i in items])
                    .values_list("critique_id", flat=True))
        fresh = [item for item in items if item.critique.pk not in taken]
        for item in fresh:
            item.full_clean(exclude=["critique", "project"], validate_unique=False)
        ReviewItem.objects.bulk_create(fresh)
    return fresh
