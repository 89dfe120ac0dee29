"""The closed loop, round after round, in the foreground (`manage.py demo_round`, the benchmark):

    attack the active learner -> review (a STAND-IN: one named expert approves every critique)
    -> snapshot -> fine-tune -> measure base and candidate on the held-out attacks
    -> promote the candidate if it is better -> the next round attacks the active learner

The review step is a stand-in, not a review: the expert account approves the critic's verdict
and revision on every item without reading it, so the learner learns the critic's own labels
unchecked. That is what a demo or a benchmark of the loop's mechanics can do without people; it
is never a way to make real training data, and the output says so every round.

The held-out attacks are the same in every round and never trained on: every round's snapshot
reserves the held-out set of the evaluation budget (SnapshotFilters.reserve_held_out), and the
runs are measured on exactly that set. Each round trains a fresh adapter on the base model from
all curated labels so far (rounds add data; adapters are not stacked). The promotion rule is
alignment_core.closed_loop.promotion_decision, with over-refusal counted from the learner round
1 started from.

Every step asks the database what is already done (round N's campaign, snapshot and run are
found by name), so running the loop again after a crash or Ctrl+C continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from alignment_core.closed_loop import (
    DEFAULT_MAX_OVER_REFUSAL_RISE,
    HeldOut,
    promotion_decision,
)
from annotator.models import (
    Campaign,
    DatasetSnapshot,
    JobStatus,
    LearnerVersion,
    Project,
    ReviewAction,
    TrainingRun,
)
from annotator.services.held_out import HELD_OUT_STRATEGIES
from annotator.services.jobs import job_prepare_resume
from annotator.services.learners import learner_promote
from annotator.services.review import review_claim_next, review_submit
from annotator.services.snapshots import SnapshotFilters, snapshot_create
from annotator.services.training import TrainingSettings, training_launch

Say = Callable[[str], None]
PROMOTE_POLICIES = ("if_better", "always", "never")


class LoopError(Exception):
    """A step of a round did not finish; running the loop again resumes it."""


@dataclass
class LoopSettings:
    rounds: int = 1
    budget: int = 48  # attacks per round
    strategies: tuple[str, ...] = HELD_OUT_STRATEGIES[:4]
    seed: int = 1  # round N's campaign uses seed + N - 1
    method: str = "sft_dpo"
    objective: str = "sigmoid"
    epochs: int = 2
    max_steps: int | None = None
    eval_budget: int = 128  # held-out attacks, the same every round
    promote: str = "if_better"
    max_over_refusal_rise: float = DEFAULT_MAX_OVER_REFUSAL_RISE
    training: dict[str, Any] = field(default_factory=dict)  # more TrainingSettings values


@dataclass
class RoundReport:
    number: int
    learner: str  # the version the round attacked
    campaign_id: int
    campaign_attacks: int
    campaign_asr: float | None
    approved: int  # items the stand-in approved in this round
    snapshot_id: int
    pairs: int
    sft: int
    run_id: int
    heldout_n: int
    base: dict
    candidate: dict
    candidate_name: str
    promoted: bool
    reason: str


def _name(number: int) -> str:
    return f"Loop round {number}"


def _campaign(project: Project, number: int, settings: LoopSettings, say: Say) -> Campaign:
    from annotator.services.campaign_runner import campaign_execute
    from annotator.services.campaigns import campaign_launch

    campaign = Campaign.objects.filter(project=project, name=_name(number)).first()
    if campaign is None:
        campaign = campaign_launch(project=project, name=_name(number),
                                   strategies=list(settings.strategies), budget=settings.budget,
                                   seed=settings.seed + number - 1, enqueue=False)
    elif campaign.status == JobStatus.SUCCEEDED:
        say(f"Campaign {campaign.pk} already finished.")
        return campaign
    elif campaign.status != JobStatus.QUEUED:
        job_prepare_resume(job=campaign)  # interrupted earlier: continue from its checkpoints
    say(f"Campaign {campaign.pk}: {campaign.budget} attacks ({', '.join(campaign.strategies)}) "
        f"against {campaign.learner_version.name}")
    seen: set[str] = set()

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in seen or done == total:
            say(f"  {stage}: {done}/{total}")
            seen.add(stage)

    campaign_execute(campaign=campaign, on_progress=on_progress)
    campaign.refresh_from_db()
    if campaign.status != JobStatus.SUCCEEDED:
        raise LoopError(f"Campaign {campaign.pk} {campaign.status}: {campaign.error}")
    return campaign


def stand_in_approve_all(*, project: Project, expert) -> int:
    """The stand-in review: `expert` approves every critique waiting in the queue, unread."""
    approved = 0
    while (item := review_claim_next(project=project, expert=expert)) is not None:
        try:
            review_submit(item=item, expert=expert, action=ReviewAction.APPROVE)
        except ValidationError:  # taken by someone else meanwhile, or nothing to approve
            continue
        approved += 1
    return approved


def _run(project: Project, number: int, settings: LoopSettings, expert, say: Say) -> TrainingRun:
    from annotator.services.training_pipeline import training_execute

    snapshot = DatasetSnapshot.objects.filter(project=project, name=_name(number)).first()
    if snapshot is None:
        snapshot = snapshot_create(project=project, name=_name(number), created_by=expert,
                                   filters=SnapshotFilters(reserve_held_out=settings.eval_budget))
    say(f"Snapshot {snapshot.pk}: {snapshot.item_count} curated items so far, "
        f"{snapshot.pair_count} pairs, {snapshot.sft_count} SFT examples (held-out attacks "
        "reserved)")
    run = TrainingRun.objects.filter(snapshot=snapshot).order_by("-pk").first()
    if run is None:
        values = {"method": settings.method, "objective": settings.objective,
                  "epochs": settings.epochs, "max_steps": settings.max_steps,
                  "eval_budget": settings.eval_budget, **settings.training}
        run = training_launch(project=project, snapshot=snapshot, created_by=expert,
                              settings=TrainingSettings(**values), enqueue=False)
    elif run.status == JobStatus.SUCCEEDED:
        return run
    elif run.status != JobStatus.QUEUED:
        job_prepare_resume(job=run)
    say(f"Training run {run.pk}: {run.get_method_display()} on the base model, then the "
        f"held-out evaluation ({settings.eval_budget} attacks)")
    training_execute(run=TrainingRun.objects.select_related(
        "project", "snapshot", "base_version", "output_version").get(pk=run.pk))
    run.refresh_from_db()
    if run.status != JobStatus.SUCCEEDED:
        raise LoopError(f"Training run {run.pk} {run.status}: {run.error}")
    return run


def _figures(summary: dict) -> HeldOut:
    return HeldOut(summary["asr"], summary["over_refusal"])


def _first_learner(project: Project) -> HeldOut | None:
    """The held-out figures of the learner round 1 started from: the reference for the
    over-refusal budget of every round."""
    run = (TrainingRun.objects.filter(project=project, snapshot__name=_name(1))
           .order_by("pk").first())
    summary = (run.evaluation or {}).get("summary") if run is not None else None
    return _figures(summary["base"]) if summary else None


def _promote(run: TrainingRun, settings: LoopSettings, expert) -> tuple[bool, str]:
    candidate = LearnerVersion.objects.get(pk=run.output_version_id)
    if candidate.promoted_at is not None:
        return True, (candidate.metrics.get("loop") or {}).get("reason", "promoted earlier")
    summary = run.evaluation["summary"]
    decision = promotion_decision(_figures(summary["base"]), _figures(summary["candidate"]),
                                  settings.max_over_refusal_rise,
                                  reference=_first_learner(run.project))
    promote = {"always": True, "never": False}.get(settings.promote, decision.promote)
    reason = decision.reason if settings.promote == "if_better" else \
        f"--promote {settings.promote} ({decision.reason})"
    candidate.metrics = {**candidate.metrics, "loop": {"promoted": promote, "reason": reason}}
    candidate.save(update_fields=["metrics"])
    if promote:
        learner_promote(version=candidate, user=expert)
    return promote, reason


def loop_round(*, project: Project, expert, number: int, settings: LoopSettings,
               say: Say) -> RoundReport:
    """Run (or finish) round `number`: see the module docstring."""
    say(f"== Round {number}: attack")
    campaign = _campaign(project, number, settings, say)
    say(f"== Round {number}: review (STAND-IN: {expert.username} approves every critique "
        "unread, so the learner learns the critic's labels unchecked; not a human review)")
    approved = stand_in_approve_all(project=project, expert=expert)
    say(f"Approved {approved} items.")
    say(f"== Round {number}: train and evaluate")
    run = _run(project, number, settings, expert, say)
    summary = run.evaluation.get("summary")
    if not summary:
        raise LoopError(f"Training run {run.pk} has no held-out evaluation (eval budget 0).")
    promoted, reason = _promote(run, settings, expert)
    say(f"== Round {number}: {'promoted' if promoted else 'kept the active learner'}: {reason}")
    snapshot = run.snapshot
    overall = (campaign.report.get("asr") or {}).get("overall") or {}
    return RoundReport(
        number=number, learner=campaign.learner_version.name, campaign_id=campaign.pk,
        campaign_attacks=campaign.report.get("n_attacks", 0), campaign_asr=overall.get("rate"),
        approved=approved, snapshot_id=snapshot.pk, pairs=snapshot.pair_count,
        sft=snapshot.sft_count, run_id=run.pk, heldout_n=run.evaluation.get("n_attacks", 0),
        base=summary["base"], candidate=summary["candidate"],
        candidate_name=run.output_version.name, promoted=promoted, reason=reason)


def loop_run(*, project: Project, expert, settings: LoopSettings, say: Say) -> list[RoundReport]:
    """Rounds 1..settings.rounds (finished ones are read back, not run again)."""
    if settings.promote not in PROMOTE_POLICIES:
        raise ValueError(f"promote must be one of {PROMOTE_POLICIES}")
    if settings.eval_budget < 1:
        raise ValueError("The loop needs held-out attacks (eval budget of at least 1).")
    return [loop_round(project=project, expert=expert, number=number, settings=settings, say=say)
            for number in range(1, settings.rounds + 1)]
