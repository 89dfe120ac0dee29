"""Review items: queue critiques for experts, with priority, the audit sample and auto-accept.

Review priority (higher is reviewed first):

    priority = (1 - critic confidence) + severity / 4 + informativeness / 2

The first two terms lie in [0, 1] and weigh the same: the items the critic is least sure about,
and the most harmful ones, reach experts first. Informativeness (0..1, stored by the critic in
`signals`: how much an expert's label would teach the critic, high where its four-way verdict
or the request's harmfulness is a coin toss) weighs half as much, so among items equally
uncertain and severe the ones that teach the critic most come first.

The audit sample is a uniform random share of all items, drawn per item from the campaign's
seed (a resumed job draws the same sample): `audit_rate` of them once an auto-accept threshold
exists, and every item while none does (experts review them all anyway, so flagging them costs
nothing and lets audits accumulate ten times faster at the default rate). Only audited items'
expert verdicts set the threshold (selectors/critic.py): a sample drawn independently of the
critic's confidence keeps the precision estimate unbiased at every candidate threshold, including
ones below the current threshold, where no unaudited item is ever seen by an expert.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from alignment_core.dimensions import DIMENSIONS
from annotator.models import Critique, ItemState, Project, ReviewItem

INFORMATIVENESS_WEIGHT = 0.5


def item_priority(*, confidence: float, severity: int, informativeness: float = 0.0) -> float:
    """The queue order: (1 - confidence) + severity / 4 + informativeness / 2 (module docstring)."""
    teach = min(max(float(informativeness), 0.0), 1.0)
    return round((1.0 - float(confidence)) + min(max(int(severity), 0), 4) / 4.0
                 + INFORMATIVENESS_WEIGHT * teach, 6)


def critique_informativeness(critique: Critique) -> float:
    """What the critic stored (0 when it stored nothing, e.g. an imported label)."""
    value = (critique.signals or {}).get("informativeness")
    return float(value) if isinstance(value, (int, float)) else 0.0


def audit_draw(*, seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by the campaign seed and the item's identity.

    Seeding per item (not one generator walked in order) keeps the audit sample the same when a
    resumed job creates the remaining items in different batches.
    """
    return random.Random(f"audit:{seed}:{key}").random()


def review_items_create(*, project: Project, critiques: Iterable[Critique], seed: int = 0,
                        threshold: float | None = None) -> list[ReviewItem]:
    """Queue critiques for review: an audit sample, then auto-accept above `threshold`.

    Each critique's audit draw (seeded) decides first: below the audit share it goes to the
    experts flagged `is_audit`. Otherwise, with a `threshold` (computed from the audits, see
    selectors/critic.py; None until audits support one) and a confidence at least that high,
    it is curated at once (AUTO_ACCEPTED, the critic's verdict as the final label); everything
    else goes to the experts. Critiques that already have an item are skipped, so calling this
    twice creates nothing new.
    """
    audit_share = project.audit_rate if threshold is not None else 1.0
    now = timezone.now()
    items = []
    for critique in critiques:
        response = critique.response
        attack = response.attack
        item = ReviewItem(project=project, critique=critique,
                          priority=item_priority(
                              confidence=critique.confidence, severity=critique.severity,
                              informativeness=critique_informativeness(critique)),
                          reviews_required=project.reviews_per_item)
        key = f"{attack.seq}:{response.sample_index}:{attack.text}"
        if audit_draw(seed=seed, key=key) < audit_share:
            item.is_audit = True
        elif threshold is not None and critique.confidence >= threshold:
            item.state = ItemState.AUTO_ACCEPTED
            item.final_verdict = critique.verdict
            item.final_severity = critique.severity
            item.final_dimensions = {name: critique.scores[name] for name in DIMENSIONS}
            item.final_response = critique.approved_answer
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
