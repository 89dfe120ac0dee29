"""Red-team campaigns: launch, cancel, resume, and the pipeline the background job runs.

A campaign's job runs four checkpointed stages, each safe to run again:

    attack   -> AttackQuery rows, unique (campaign, seq); generated once, in one transaction
    respond  -> Response rows, unique (attack, version, sample); written per batch
    critique -> one Critique per response; written per batch
    items    -> one ReviewItem per critique (OneToOne); written per batch, with auto-accept

Every stage starts by asking the database what is still missing, so a job that crashed, was
cancelled or was recovered by `jobs_recover_stale` continues where it stopped and never writes
anything twice. Between batches `job_progress` beats the heart, records done/total/rate/ETA for
the page, and raises JobCancelled when an admin pressed Cancel.

Review priority (higher is reviewed first):

    priority = (1 - critic confidence) + severity / 4

Both terms lie in [0, 1] and weigh the same: the items the critic is least sure about, and the
most harmful ones, reach experts first.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import (
    AttackQuery,
    Campaign,
    Critique,
    ItemState,
    JobStatus,
    LearnerVersion,
    Project,
    Response,
    ReviewItem,
)
from annotator.services.jobs import (
    JobCancelled,
    job_enqueue,
    job_finish,
    job_prepare_resume,
    job_progress,
    job_request_cancel,
    job_start,
)

logger = logging.getLogger(__name__)

STAGES = ("attack", "respond", "critique", "items")
STAGE_LABELS = {"attack": "Write attacks", "respond": "Learner answers",
                "critique": "Critic judges", "items": "Queue for review"}
MAX_BUDGET = 10_000
MAX_SAMPLES = 8
# Verdicts whose suggested revision (not the learner's answer) is the curated "chosen" response.
REVISED_VERDICTS = ("unsafe", "over_refusal")

ProgressHook = Callable[[str, int, int], None]


def _setting(name: str, default):
    # Tunables with defaults here, so settings.py needs no entry until someone wants to change one.
    return getattr(settings, name, default)


def batch_size() -> int:
    # 8 is the measured sweet spot on two CPU cores (about 80 tokens/s); each batch is one
    # checkpoint, and the learner also polls for a cancel during a batch.
    return int(_setting("CAMPAIGN_BATCH_SIZE", 8))


def max_new_tokens() -> int:
    return int(_setting("CAMPAIGN_MAX_NEW_TOKENS", 96))


def critic_name() -> str:
    return str(_setting("CAMPAIGN_CRITIC", "layered"))


def known_strategies() -> list[str]:
    from alignment_core.attacker import STRATEGIES

    return sorted(STRATEGIES)


def known_categories() -> list[str]:
    # The behaviour categories plus "canary": the objectives a string check can verify.
    from alignment_core.attacker import CANARY_CATEGORY, categories

    return [*categories(), CANARY_CATEGORY]


# -- launch, cancel, resume --------------------------------------------------------------------


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
    categories = _validate_choice(categories, known_categories(), "categories", allow_empty=True)
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
        _enqueue(campaign)
    return campaign


def _enqueue(campaign: Campaign) -> None:
    from annotator.tasks.campaigns import campaign_run

    job_enqueue(job=campaign, task=campaign_run)


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
    _enqueue(campaign)
    return campaign


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Stop a campaign: at once if queued, at its next batch if running. Its work is kept."""
    if not campaign.is_active:
        raise ValidationError("Only a queued or running campaign can be cancelled.")
    job_request_cancel(job=campaign)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Run a failed or cancelled campaign again; its stages continue from their checkpoints."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not campaign.can_resume:
        raise ValidationError("Only a failed or cancelled campaign can be resumed.")
    job_prepare_resume(job=campaign)
    _enqueue(campaign)
    return campaign


# -- review items --------------------------------------------------------------------------------


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


# -- the pipeline ------------------------------------------------------------------------------


@dataclass
class _Runner:
    """One run of a campaign's stages in this process (the job, or the foreground command)."""

    campaign: Campaign
    on_progress: ProgressHook | None = None
    _learner: object | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        job_progress(job=self.campaign, stage=stage, done=done, total=total)
        if self.on_progress is not None:
            self.on_progress(stage, done, total)

    def should_cancel(self) -> bool:
        return Campaign.objects.filter(pk=self.campaign.pk, cancel_requested=True).exists()

    def learner(self):
        if self._learner is None:
            from alignment_core.learner import Learner
            from annotator.learner_runtime import loaded_for

            self._learner = Learner(loaded_for(self.campaign.learner_version))
        return self._learner

    # 1. Attacks: generated all at once (deterministic for the seed) and written in one
    # transaction, so either every attack of the campaign exists or none does.
    def attack(self) -> None:
        campaign = self.campaign
        existing = campaign.attacks.count()
        if existing:
            self.progress("attack", existing, existing)
            return
        from alignment_core.attacker import AttackConfig, generate_attacks
        from annotator.selectors.campaigns import attack_history

        self.progress("attack", 0, campaign.budget)
        config = AttackConfig(strategies=list(campaign.strategies),
                              categories=list(campaign.categories) or None,
                              budget=campaign.budget, seed=campaign.seed)
        history = attack_history(project=campaign.project, before=campaign)
        needs_learner = any(_strategy_needs_learner(s) for s in campaign.strategies)
        attacks = generate_attacks(config, learner=self.learner() if needs_learner else None,
                                   history=[scored for scored, _ in history])
        parents = {scored.attack.text: pk for scored, pk in history}
        rows = [AttackQuery(project=campaign.project, campaign=campaign, seq=seq, text=a.text,
                            strategy=a.strategy, category=a.category,
                            behaviour_id=a.behaviour_id or "", severity=int(a.severity or 0),
                            is_benign=bool(a.is_benign), canary_id=a.canary_id or "",
                            system_prompt=a.system_prompt or "", turns=a.turns or None,
                            parent_id=parents.get(a.parent_text) if a.parent_text else None,
                            meta=_jsonable(a.meta or {}))
                for seq, a in enumerate(attacks)]
        with transaction.atomic():
            if not campaign.attacks.exists():
                AttackQuery.objects.bulk_create(rows)
        self.progress("attack", len(rows), len(rows))

    # 2. Responses: every (attack, sample) still missing for the campaign's learner version,
    # answered a batch at a time; each batch is committed before the next starts.
    def respond(self) -> None:
        from alignment_core.chat import attack_messages
        from alignment_core.learner import Cancelled, GenerationConfig

        campaign = self.campaign
        version = campaign.learner_version
        samples = campaign.samples_per_attack
        attacks = list(campaign.attacks.order_by("seq").prefetch_related("responses"))
        todo: list[tuple[AttackQuery, int]] = []
        done = 0
        for attack in attacks:
            answered = {r.sample_index for r in attack.responses.all()
                        if r.learner_version_id == version.pk}
            imported = any(r.learner_version_id != version.pk for r in attack.responses.all())
            if imported and not answered:
                # Imported prompt/response pairs are judged as they are, not answered again.
                continue
            done += len(answered & set(range(samples)))
            todo += [(attack, k) for k in range(samples) if k not in answered]
        total = done + len(todo)
        self.progress("respond", done, total)
        size = batch_size()
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            sample = chunk[0][1]
            config = GenerationConfig(max_new_tokens=max_new_tokens(), batch_size=size,
                                      do_sample=samples > 1,
                                      seed=campaign.seed * 100_003 + start * 7 + sample)
            try:
                answers = self.learner().generate([attack_messages(a) for a, _ in chunk], config,
                                                  should_cancel=self.should_cancel)
            except Cancelled:
                raise JobCancelled() from None
            with transaction.atomic():
                Response.objects.bulk_create(
                    [Response(attack=attack, learner_version=version, sample_index=k, text=text)
                     for (attack, k), text in zip(chunk, answers)],
                    ignore_conflicts=True)
            done += len(chunk)
            self.progress("respond", done, total)

    def critic(self):
        from alignment_core.critic import LearnedHead, make_critic

        head_data = self.campaign.project.critic_head
        head = LearnedHead.from_dict(head_data) if head_data else None
        options = {"learner": self.learner(), "head": head}
        if critic_name() == "layered":
            # The critic's LM writes as much as the learner answered, and in the same batches.
            options.update(max_new_tokens=min(80, max_new_tokens()), batch_size=batch_size())
        return make_critic(critic_name(), **options)

    # 3. Critiques: responses of the campaign that have none yet, a batch at a time.
    def critique(self) -> None:
        from alignment_core.critic import Cancelled as CriticCancelled, CritiqueInput
        from alignment_core.learner import Cancelled as LearnerCancelled

        campaign = self.campaign
        responses = Response.objects.filter(attack__campaign=campaign)
        total = responses.count()
        pending = list(responses.filter(critiques__isnull=True).select_related("attack")
                       .order_by("attack__seq", "sample_index"))
        done = total - len(pending)
        self.progress("critique", done, total)
        if not pending:
            return
        critic = self.critic()
        size = batch_size()
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            inputs = [CritiqueInput(query=r.attack.text, response=r.text,
                                    category=r.attack.category,
                                    behaviour_id=r.attack.behaviour_id,
                                    is_benign=r.attack.is_benign,
                                    canary_id=r.attack.canary_id or None,
                                    severity_hint=r.attack.severity if r.attack.behaviour_id else None)
                      for r in chunk]
            try:
                results = critic.critique(inputs, should_cancel=self.should_cancel)
            except (CriticCancelled, LearnerCancelled):
                raise JobCancelled() from None
            rows = [Critique(response=r, critic_name=c.critic_name,
                             critic_version=str(c.critic_version)[:32], verdict=c.verdict,
                             category=(c.category or "")[:64], severity=min(max(int(c.severity), 0), 4),
                             confidence=min(max(float(c.confidence), 0.0), 1.0),
                             spans=[{"start": s.start, "end": s.end, "text": s.text} for s in c.spans],
                             explanation=c.explanation, suggested_revision=c.suggested_revision,
                             signals=_jsonable(c.signals or {}))
                    for r, c in zip(chunk, results)]
            with transaction.atomic():
                # Re-check inside the transaction: a response judged meanwhile is skipped.
                judged = set(Critique.objects.filter(response__in=chunk)
                             .values_list("response_id", flat=True))
                Critique.objects.bulk_create([row for row in rows if row.response_id not in judged])
            done += len(chunk)
            self.progress("critique", done, total)

    # 4. Review items: critiques without an item, with priority and auto-accept.
    def items(self) -> None:
        campaign = self.campaign
        critiques = Critique.objects.filter(response__attack__campaign=campaign)
        total = critiques.count()
        pending = list(critiques.filter(review_item__isnull=True)
                       .select_related("response__attack").order_by("id"))
        done = total - len(pending)
        self.progress("items", done, total)
        size = max(batch_size(), 64)
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            review_items_create(project=campaign.project, critiques=chunk, seed=campaign.seed)
            done += len(chunk)
            self.progress("items", done, total)

    def report(self) -> None:
        from annotator.selectors.campaigns import campaign_report

        # Keep keys others stored (an import records its row count) and add the figures.
        report = {**(self.campaign.report or {}), **campaign_report(campaign=self.campaign)}
        Campaign.objects.filter(pk=self.campaign.pk).update(report=report)
        self.campaign.report = report


def _strategy_needs_learner(name: str) -> bool:
    from alignment_core.attacker import STRATEGIES

    strategy = STRATEGIES.get(name)
    return bool(getattr(strategy, "needs_learner", False))


def _jsonable(value):
    """Plain JSON types only (numpy floats and tuples from alignment_core become float/list)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def campaign_execute(*, campaign: Campaign, on_progress: ProgressHook | None = None) -> Campaign:
    """Run a campaign's stages to the end in this process; the task and the command call this.

    JobCancelled finishes the campaign as CANCELLED; any other error marks it FAILED with the
    message and is re-raised (so the task queue records it too). Either way every committed
    batch stays, and `campaign_resume` continues from there.
    """
    job_start(job=campaign, stage=STAGES[0])
    runner = _Runner(campaign=campaign, on_progress=on_progress)
    try:
        runner.attack()
        runner.respond()
        runner.critique()
        runner.items()
        runner.report()
    except JobCancelled:
        job_finish(job=campaign, status=JobStatus.CANCELLED)
        logger.info("Campaign %s cancelled", campaign.pk)
        return campaign
    except Exception as error:
        job_finish(job=campaign, status=JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        logger.exception("Campaign %s failed", campaign.pk)
        raise
    job_finish(job=campaign, status=JobStatus.SUCCEEDED)
    return campaign
