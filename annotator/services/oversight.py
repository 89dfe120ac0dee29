"""Oversight writes: gold items, the blind and gold shares, and the reliability job.

The reliability job (a `ReliabilityRun`) reads every standing expert verdict of a project
(approve, edit, reject and label decisions nobody undid; skips say nothing about the verdict and
adjudications are the reference, not a verdict under test), the gold labels and the adjudicated
labels, and computes with `alignment_core.oversight`:

- each expert's confusion matrix and each item's posterior over the four verdicts (Dawid-Skene,
  anchored on the gold labels);
- gold accuracy per expert, from gold-probe answers only: an answer given before the item became
  gold was one of the disagreements that sent it to adjudication, not a test;
- assisted vs blind, against the gold labels and, where there is none, the adjudicated ones.

It stores the figures as one JSON report on the run (`reliability_report` shapes it) and each
item's posterior, and the probability that its curated verdict is right, on the item, where a
snapshot picks it up. It runs on demand (the Oversight page's Refresh, the API) and, in process,
before a snapshot is frozen when the last estimate is out of date (`reliability_ensure_fresh`).
"""

from __future__ import annotations

import logging
import statistics

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alignment_core.oversight import (
    compare_modes,
    estimate_reliability,
    gold_accuracy,
    reference_labels,
)
from annotator.models import JobStatus, Project, ReliabilityRun, ReviewItem
from annotator.models.jobs import ACTIVE_STATUSES
from annotator.selectors.oversight import (
    OversightInputs,
    oversight_fingerprint,
    oversight_inputs,
    reliability_latest,
    reliability_stale,
)
from annotator.services.jobs import JobCancelled, job_enqueue, job_finish, job_progress, job_start

logger = logging.getLogger(__name__)

# The project settings of the oversight loop, declared once as model fields (Project): the
# Oversight page's form and the project API's PATCH both take exactly these.
# Label confidences and posteriors are stored rounded: they enter snapshot hashes, which must
# not depend on the last bits of a floating-point sum.
DIGITS = 4


# -- settings and gold items ------------------------------------------------------------------


def review_item_gold_set(*, item: ReviewItem, admin, gold: bool) -> ReviewItem:
    """Mark an adjudicated item as gold (its final verdict is the gold label) or unmark it.
    Marking never changes the label; experts' answers to gold items never change it either."""
    with transaction.atomic():
        locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
        if gold and not (locked.adjudicated and locked.final_verdict):
            raise ValidationError("Only adjudicated items can be gold: settle the disagreement "
                                  "first, then mark it.")
        if locked.is_gold != gold:
            locked.is_gold = gold
            locked.gold_marked_by = admin if gold else None
            locked.gold_marked_at = timezone.now() if gold else None
            locked.save(update_fields=["is_gold", "gold_marked_by", "gold_marked_at"])
    return locked


# -- the report ---------------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def reliability_report(inputs: OversightInputs) -> tuple[dict, dict[str, dict[str, float]]]:
    """The report (JSON-able) and each item's posterior, from the inputs alone.

    Report keys: `counts`; `method`, `iterations`, `prior` (the Dawid-Skene fit); `experts`, one
    row per expert sorted by id (username, reviews, blind reviews, gold answers, seconds per
    item, estimated accuracy and error, the estimated confusion matrix
    confusion[true][given], `gold`: accuracy with its interval and the confusion counts of the
    gold answers, or None, and `modes`: assisted vs blind for that expert); `comparison`:
    assisted vs blind pooled over everyone (alignment_core.oversight.comparison).
    """
    verdicts = inputs.verdicts
    fit = estimate_reliability(verdicts, inputs.gold)
    probes = [v for v in verdicts if (v.item_id, v.expert_id) in inputs.probes]
    gold_scores = {g.expert_id: g for g in gold_accuracy(probes, inputs.gold)}
    modes = compare_modes(verdicts, reference_labels(inputs.gold, inputs.adjudicated))
    per_expert = {c.expert_id: c for c in modes[1:]}
    experts = []
    for estimate in fit.experts:
        mine = [v for v in verdicts if v.expert_id == estimate.expert_id]
        gold = gold_scores.get(estimate.expert_id)
        experts.append({
            "expert_id": estimate.expert_id,
            "username": inputs.names.get(estimate.expert_id, estimate.expert_id),
            "reviews": estimate.n_reviews,
            "blind_reviews": sum(v.blind for v in mine),
            "gold_answers": 0 if gold is None else gold.accuracy.n,
            "seconds_per_item": _mean([v.seconds for v in mine if v.seconds is not None]),
            "estimated_accuracy": estimate.accuracy,
            "estimated_error": estimate.error_rate,
            "confusion": estimate.confusion,
            "gold": None if gold is None else gold.to_dict(),
            "modes": per_expert[estimate.expert_id].to_dict(),
        })
    report = {
        "counts": {"verdicts": len(verdicts), "experts": len(experts),
                   "items": len(fit.items), "blind_verdicts": sum(v.blind for v in verdicts),
                   "gold_items": len(inputs.gold), "gold_answers": len(probes),
                   "adjudicated_items": len(inputs.adjudicated)},
        "method": fit.method, "iterations": fit.iterations, "prior": fit.prior,
        "experts": experts,
        "comparison": modes[0].to_dict(),
    }
    return report, {i.item_id: i.posterior for i in fit.items}


def _write_confidences(*, project: Project, posteriors: dict[str, dict[str, float]]) -> int:
    """Store each item's posterior and the probability of its curated verdict; returns how many
    items changed. Items without expert verdicts (any more) lose theirs."""
    changed = []
    items = ReviewItem.objects.filter(project=project).only(
        "id", "final_verdict", "label_confidence", "label_posterior")
    for item in items.iterator(chunk_size=2000):
        posterior = posteriors.get(str(item.pk))
        rounded = {k: round(p, DIGITS) for k, p in posterior.items()} if posterior else None
        confidence = rounded.get(item.final_verdict) if rounded else None
        if (rounded, confidence) != (item.label_posterior, item.label_confidence):
            item.label_posterior, item.label_confidence = rounded, confidence
            changed.append(item)
    with transaction.atomic():
        ReviewItem.objects.bulk_update(changed, ["label_posterior", "label_confidence"],
                                       batch_size=500)
    return len(changed)


# -- the job ------------------------------------------------------------------------------------


def reliability_refresh(*, project: Project, user=None) -> ReliabilityRun:
    """Queue a new estimate, or return the one already queued or running."""
    with transaction.atomic():
        active = ReliabilityRun.objects.filter(project=project,
                                               status__in=ACTIVE_STATUSES).first()
        if active is not None:
            return active
        run = ReliabilityRun(project=project,
                             created_by=user if user and user.is_authenticated else None)
        run.full_clean()
        run.save()
        job_enqueue(job=run)
    return run


def reliability_execute(*, run: ReliabilityRun) -> None:
    """Compute the estimate in this process (the task calls this; so does a snapshot whose
    estimate is stale). Stages: collect the verdicts, fit, write the label confidences."""
    job_start(job=run, stage="collect")
    try:
        fingerprint = oversight_fingerprint(project=run.project)
        inputs = oversight_inputs(project=run.project)
        n = len(inputs.verdicts)
        job_progress(job=run, stage="collect", done=n, total=n)
        report, posteriors = reliability_report(inputs)
        job_progress(job=run, stage="estimate", done=1, total=1)
        written = _write_confidences(project=run.project, posteriors=posteriors)
        job_progress(job=run, stage="write", done=written, total=written)
    except JobCancelled:
        job_finish(job=run, status=JobStatus.CANCELLED)
        return
    except Exception as error:
        job_finish(job=run, status=JobStatus.FAILED, error=str(error))
        raise
    report["computed_at"] = timezone.now().isoformat()
    ReliabilityRun.objects.filter(pk=run.pk).update(report=report, fingerprint=fingerprint)
    run.report, run.fingerprint = report, fingerprint
    job_finish(job=run, status=JobStatus.SUCCEEDED)


def reliability_ensure_fresh(*, project: Project, user=None) -> ReliabilityRun | None:
    """Before a snapshot: estimate again, in this process, when the last estimate is out of date
    (a few seconds; the snapshot must record confidences of the labels it freezes). A failed
    estimate is logged and recorded on its run; the snapshot then keeps the confidences of the
    last good one rather than not being made."""
    if not reliability_stale(project=project):
        return None
    latest = reliability_latest(project=project)
    run = ReliabilityRun(project=project,
                         created_by=user if user and user.is_authenticated else None)
    run.save()
    try:
        reliability_execute(run=run)
    except Exception:
        logger.exception("The reliability estimate of %s failed; the snapshot keeps the last "
                         "label confidences", project.slug)
        return latest
    return run
