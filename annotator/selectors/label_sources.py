"""Where a curated label came from, how sure it is, and how noisy the critic's labels are.

`label_origin(item)` is the one place that decides a curated item's label source
(alignment_core.training.label_sources.LABEL_SOURCES) and confidence:

- critic: auto-accepted, nobody reviewed it; the confidence is the critic's calibrated
  confidence stored on the critique;
- adjudicated: the reviewers disagreed and an admin settled it;
- expert_consensus: two or more standing expert decisions (a curated item that was not
  adjudicated has decisions that all agree, see services.review);
- single_expert: one standing decision.

A human label's confidence is the experts' posterior probability that it is right where the
reliability job estimated one (`ReviewItem.label_confidence`, added by the oversight work) and
None otherwise: a human label is then taken as sure (weight = the source's weight).

`audited_noise(project)` estimates the critic's label noise from the audit sample: the share of
audited items on which the experts' final verdict differs from the critic's. It is the natural
label-smoothing rate for conservative or robust DPO on critic labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotator.models import DECISIONS, ItemState, Project, Review, ReviewItem

# Label smoothing must stay below 0.5 (at 0.5 labels carry no information); an estimate at or
# above it is shown as it is but pre-fills this.
MAX_LABEL_SMOOTHING = 0.45


@dataclass(frozen=True)
class LabelOrigin:
    source: str  # one of LABEL_SOURCES
    confidence: float | None  # the probability the label is right; None: taken as sure


def _standing_decisions(item: ReviewItem) -> int:
    """Expert decisions on the item that nobody undid (gold probes, which never touch the item,
    do not count). Uses the reviews snapshot_items prefetched when they are there."""
    prefetched = getattr(item, "prefetched_decisions", None)
    if prefetched is None:
        prefetched = list(Review.objects.filter(item=item, action__in=DECISIONS,
                                                undone_by__isnull=True))
        undone: set[int] = set()
    else:
        undone = getattr(item, "undone_ids", set())
    return sum(1 for review in prefetched
               if review.pk not in undone and not getattr(review, "gold_probe", False))


def label_origin(item: ReviewItem) -> LabelOrigin:
    """The label source and confidence of one curated item (see the module docstring)."""
    if item.state == ItemState.AUTO_ACCEPTED:
        return LabelOrigin("critic", float(item.critique.confidence))
    posterior = getattr(item, "label_confidence", None)
    confidence = float(posterior) if posterior is not None else None
    if item.adjudicated:
        return LabelOrigin("adjudicated", confidence)
    if _standing_decisions(item) >= 2:
        return LabelOrigin("expert_consensus", confidence)
    return LabelOrigin("single_expert", confidence)


@dataclass(frozen=True)
class NoiseEstimate:
    """Critic-versus-expert disagreement on the audit sample, with a 95% interval."""

    audited: int
    disagreements: int
    lo: float | None = None
    hi: float | None = None

    @property
    def rate(self) -> float | None:
        return self.disagreements / self.audited if self.audited else None

    @property
    def label_smoothing(self) -> float | None:
        """The rate as a label-smoothing setting: two decimals, kept below 0.5."""
        if self.rate is None:
            return None
        return round(min(self.rate, MAX_LABEL_SMOOTHING), 2)


def audited_noise(*, project: Project) -> NoiseEstimate:
    """How often the experts overruled the critic on audited items (curated by experts)."""
    from scipy.stats import binomtest

    rows = (ReviewItem.objects.filter(project=project, is_audit=True, state=ItemState.DONE)
            .exclude(final_verdict="").values_list("critique__verdict", "final_verdict"))
    audited = disagreements = 0
    for critic, expert in rows:
        audited += 1
        disagreements += critic != expert
    if not audited:
        return NoiseEstimate(0, 0)
    interval = binomtest(disagreements, audited).proportion_ci(confidence_level=0.95)
    return NoiseEstimate(audited, disagreements, float(interval.low), float(interval.high))
