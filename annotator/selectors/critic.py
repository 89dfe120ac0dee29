"""Reads about the critic: the auto-accept threshold its audits support, its calibration on the
experts' decisions, its learning curve, and where its automatic retraining stands."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings

from alignment_core.critic.autoaccept import (
    DEFAULT_LEVEL,
    audits_to_lower,
    auto_accept_threshold,
)
from alignment_core.critic.calibration import expected_calibration_error, reliability_bins
from annotator.models import (
    DECISIONS,
    CriticRetrain,
    ItemState,
    Project,
    Review,
    ReviewAction,
    ReviewItem,
)

CALIBRATION_BINS = 10
# The actions that add an expert label (an undo or a skip adds none).
COUNTED_ACTIONS = (*DECISIONS, ReviewAction.ADJUDICATE)


@dataclass(frozen=True)
class AutoAccept:
    """The auto-accept decision the project's audits support, for the page and the API."""

    target: float  # the project's target precision
    level: float  # the one-sided confidence level of the bound (95%)
    audits: int  # audited items with a final expert verdict
    threshold: float | None  # None: nothing is auto-accepted yet
    lower_bound: float | None  # Clopper-Pearson lower bound on precision above the threshold
    audits_above: int
    correct_above: int
    # The next lower threshold that more audits could unlock, and how many (all correct) it takes.
    lower_to: float | None
    more_audits: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def audit_outcomes(*, project: Project) -> tuple[list[float], list[bool]]:
    """(critic confidence at critique time, did the experts' final verdict agree) per audit."""
    rows = (ReviewItem.objects.filter(project=project, is_audit=True, state=ItemState.DONE)
            .exclude(final_verdict="")
            .values_list("critique__confidence", "critique__verdict", "final_verdict"))
    confidence, correct = [], []
    for value, critic, expert in rows:
        confidence.append(float(value))
        correct.append(critic == expert)
    return confidence, correct


def auto_accept_status(*, project: Project) -> AutoAccept:
    """The lowest confidence whose audited precision bound meets the project's target."""
    confidence, correct = audit_outcomes(project=project)
    target = project.target_precision
    found = auto_accept_threshold(confidence, correct, target=target, level=DEFAULT_LEVEL)
    lowering = audits_to_lower(confidence, correct, target=target, level=DEFAULT_LEVEL)
    return AutoAccept(
        target=target, level=DEFAULT_LEVEL, audits=len(confidence), threshold=found.threshold,
        lower_bound=found.lower_bound, audits_above=found.n_above,
        correct_above=found.correct_above,
        lower_to=lowering.to if lowering else None,
        more_audits=lowering.more_correct_audits if lowering else None)


def calibration_report(*, project: Project) -> dict:
    """Reliability diagram and ECE of the confidence experts saw, over their live decisions.

    Each decision is one observation: the critique's confidence, and whether the expert's
    verdict was the critic's. A calibrated critic's bars sit on the diagonal.
    """
    rows = list(Review.objects.filter(item__project=project, action__in=DECISIONS,
                                      undone_by__isnull=True)
                .values_list("item__critique__confidence", "item__critique__verdict",
                             "final_verdict"))
    confidence = [float(value) for value, _, _ in rows]
    correct = [critic == expert for _, critic, expert in rows]
    bins = reliability_bins(confidence, correct, CALIBRATION_BINS) if rows else []
    return {
        "n": len(rows),
        "ece": expected_calibration_error(confidence, correct, CALIBRATION_BINS) if rows else None,
        "accuracy": sum(correct) / len(rows) if rows else None,
        "bins": [asdict(b) for b in bins],
    }


def learning_curve(*, project: Project) -> list[CriticRetrain]:
    """Every retrain of the project's critic, oldest first: labels against held-out figures."""
    return list(project.critic_retrains.order_by("created_at", "id"))


def calibration_chart_data(*, calibration: dict, curve: list[CriticRetrain]) -> dict:
    """The series the Agreement page's uPlot charts draw (passed with json_script)."""
    used = [b for b in calibration["bins"] if b["n"]]
    return {
        "reliability": {"confidence": [b["mean_confidence"] for b in used],
                        "accuracy": [b["accuracy"] for b in used], "n": [b["n"] for b in used]},
        "learning": {"labels": [p.labels for p in curve],
                     "accuracy": [p.accuracy for p in curve], "ece": [p.ece for p in curve]},
    }


def decisions_since(*, project: Project, review_id: int) -> int:
    """Expert decisions in the project newer than the Review `review_id`."""
    return Review.objects.filter(item__project=project, id__gt=review_id,
                                 action__in=COUNTED_ACTIONS).count()


def critic_status(*, project: Project) -> dict:
    """Where the critic's learning stands: the last retrain, new decisions, the next check."""
    return {
        "last": project.critic_retrains.order_by("-created_at", "-id").first(),
        "new_decisions": decisions_since(project=project,
                                         review_id=project.critic_trained_through),
        "needed": settings.CRITIC_RETRAIN_DECISIONS,
        "minutes": settings.CRITIC_RETRAIN_MINUTES,
        "next_check_at": project.critic_retrain_due_at,
    }
