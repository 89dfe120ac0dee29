"""The campaign pipeline: the four checkpointed stages a campaign's job runs, each safe to rerun.

    attack   -> AttackQuery rows, unique (campaign, seq); generated once, in one transaction
    respond  -> Response rows, unique (attack, version, sample); written per batch
    critique -> one Critique per response; written per batch
    items    -> one ReviewItem per critique (OneToOne); written per batch, with auto-accept

Every stage starts by asking the database what is still missing, so a job that crashed, was
cancelled or was recovered by `jobs_recover_stale` continues where it stopped and never writes
anything twice. Between batches `job_progress` beats the heart, records done/total/rate/ETA for
the page, and raises JobCancelled when an admin pressed Cancel. Batch size, answer length and the
critic are the CAMPAIGN_* settings; the models each role uses (in-process or served) come from
annotator.role_models, and the tokens they spend are added to `campaign.usage` with each batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, transaction

from alignment_core.endpoints import Usage
from annotator.models import STAGES, AttackQuery, Campaign, Critique, JobStatus, Response
from annotator.role_models import RoleModels
from annotator.services.critic import critique_input_for
from annotator.services.jobs import JobCancelled, job_finish, job_progress, job_start
from annotator.services.review_items import review_items_create
from annotator.services.risks import risk_discovery_after_campaign

logger = logging.getLogger(__name__)

ProgressHook = Callable[[str, int, int], None]


@dataclass
class _Runner:
    """One run of a campaign's stages in this process (the job, or the foreground command)."""

    campaign: Campaign
    on_progress: ProgressHook | None = None
    _models: RoleModels | None = None
    _recorded: dict[str, Usage] = field(default_factory=dict)

    def progress(self, stage: str, done: int, total: int) -> None:
        job_progress(job=self.campaign, stage=stage, done=done, total=total)
        if self.on_progress is not None:
            self.on_progress(stage, done, total)

    def should_cancel(self) -> bool:
        return Campaign.objects.filter(pk=self.campaign.pk, cancel_requested=True).exists()

    @property
    def models(self) -> RoleModels:
        if self._models is None:
            self._models = RoleModels(self.campaign.project)
        return self._models

    def learner(self):
        return self.models.generator("learner", self.campaign.learner_version)

    def record_usage(self) -> None:
        """Add the tokens each role spent since the last record to `campaign.usage` (called
        inside each batch's transaction, so usage and rows are committed together)."""
        spent = self.models.usage() if self._models is not None else {}
        changed = {role: total - self._recorded.get(role, Usage())
                   for role, total in spent.items() if total != self._recorded.get(role)}
        if not changed:
            return
        with transaction.atomic():
            usage = (Campaign.objects.select_for_update().values_list("usage", flat=True)
                     .get(pk=self.campaign.pk))
            for role, delta in changed.items():
                entry = usage.setdefault(role, Usage().to_dict())
                for key, value in delta.to_dict().items():
                    entry[key] = entry.get(key, 0) + value
                entry["endpoint"] = self.models.label(role)
            Campaign.objects.filter(pk=self.campaign.pk).update(usage=usage)
        self.campaign.usage = usage
        self._recorded = {role: total.copy() for role, total in spent.items()}

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
        from annotator.selectors.risks import adopted_behaviours

        self.progress("attack", 0, campaign.budget)
        config = AttackConfig(strategies=list(campaign.strategies),
                              categories=list(campaign.categories) or None,
                              budget=campaign.budget, seed=campaign.seed)
        history = attack_history(project=campaign.project, before=campaign)
        # The attacker's LM writes for the strategies that need one, and for those that can
        # use one (evolutionary rewrites, multi-turn rollouts) once it has an endpoint of its own.
        uses_lm = ("attacker_lm" in self.models.endpoints
                   or any(_strategy_needs_learner(s) for s in campaign.strategies))
        attacker = self.models.generator("attacker_lm", campaign.learner_version) if uses_lm \
            else None
        # Categories adopted from discovered risks join the seed behaviours (the loop closes).
        attacks = generate_attacks(config, learner=attacker,
                                   history=[scored for scored, _ in history],
                                   extra_behaviours=adopted_behaviours(project=campaign.project))
        parents = {scored.attack.text: pk for scored, pk in history}
        rows = [AttackQuery(project=campaign.project, campaign=campaign, seq=seq, text=a.text,
                            strategy=a.strategy, category=a.category,
                            behaviour_id=a.behaviour_id or "", severity=int(a.severity or 0),
                            is_benign=None if _lm_written(a) else bool(a.is_benign),
                            canary_id=a.canary_id or "",
                            system_prompt=a.system_prompt or "", turns=a.turns or None,
                            parent_id=parents.get(a.parent_text) if a.parent_text else None,
                            meta=_jsonable(_meta_of(a)))
                for seq, a in enumerate(attacks)]
        with transaction.atomic():
            if not campaign.attacks.exists():
                AttackQuery.objects.bulk_create(rows)
            self.record_usage()
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
        size = self.models.chunk_size("learner", settings.CAMPAIGN_BATCH_SIZE)
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            sample = chunk[0][1]
            config = GenerationConfig(max_new_tokens=settings.CAMPAIGN_MAX_NEW_TOKENS,
                                      batch_size=settings.CAMPAIGN_BATCH_SIZE,
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
                self.record_usage()
            done += len(chunk)
            self.progress("respond", done, total)

    def critic(self):
        options = {}
        if settings.CAMPAIGN_CRITIC == "layered":
            # The critic's LM writes as much as the learner answered, and in the same batches.
            options.update(max_new_tokens=min(80, settings.CAMPAIGN_MAX_NEW_TOKENS),
                           batch_size=settings.CAMPAIGN_BATCH_SIZE)
        return self.models.critic(self.campaign.learner_version, name=settings.CAMPAIGN_CRITIC,
                                  should_cancel=self.should_cancel, **options)

    # 3. Critiques: responses of the campaign that have none yet, a batch at a time.
    def critique(self) -> None:
        from alignment_core.critic import Cancelled as CriticCancelled
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
        size = max(self.models.chunk_size(role, settings.CAMPAIGN_BATCH_SIZE)
                   for role in ("critic_writer", "critic_judge"))
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            inputs = [critique_input_for(attack=r.attack, response_text=r.text) for r in chunk]
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
                             signals=_jsonable(c.signals or {}),
                             dimensions=_jsonable(c.dimensions or {}))
                    for r, c in zip(chunk, results)]
            with transaction.atomic():
                # Re-check inside the transaction: a response judged meanwhile is skipped.
                judged = set(Critique.objects.filter(response__in=chunk)
                             .values_list("response_id", flat=True))
                Critique.objects.bulk_create([row for row in rows if row.response_id not in judged])
                self.record_usage()
            done += len(chunk)
            self.progress("critique", done, total)

    # 4. Review items: critiques without an item, with priority, the audit sample and
    # auto-accept at the threshold the project's audits support when the stage first starts
    # (recorded in the report, so a resumed job decides its remaining items the same way).
    def items(self) -> None:
        campaign = self.campaign
        critiques = Critique.objects.filter(response__attack__campaign=campaign)
        total = critiques.count()
        pending = list(critiques.filter(review_item__isnull=True)
                       .select_related("response__attack").order_by("id"))
        done = total - len(pending)
        self.progress("items", done, total)
        threshold = self.auto_accept_threshold() if pending else None
        size = max(settings.CAMPAIGN_BATCH_SIZE, 64)
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            review_items_create(project=campaign.project, critiques=chunk, seed=campaign.seed,
                                threshold=threshold)
            done += len(chunk)
            self.progress("items", done, total)

    def auto_accept_threshold(self) -> float | None:
        """The threshold this campaign auto-accepts at, computed once and kept in its report."""
        from annotator.selectors.critic import auto_accept_status

        campaign = self.campaign
        recorded = (campaign.report or {}).get("auto_accept")
        if recorded is None:
            recorded = auto_accept_status(project=campaign.project).as_dict()
            campaign.report = {**(campaign.report or {}), "auto_accept": recorded}
            Campaign.objects.filter(pk=campaign.pk).update(report=campaign.report)
        return recorded["threshold"]

    def report(self) -> None:
        from annotator.selectors.campaigns import campaign_report

        # Keep keys others stored (an import records its row count) and add the figures.
        report = {**(self.campaign.report or {}), **campaign_report(campaign=self.campaign)}
        Campaign.objects.filter(pk=self.campaign.pk).update(report=report)
        self.campaign.report = report


def _lm_written(attack) -> bool:
    """Whether a language model wrote the request's text (the few-shot strategy, unless it fell
    back to the goal itself): the attacker then does not really know what the text asks for."""
    return _strategy_needs_learner(attack.strategy) and not (attack.meta or {}).get("fallback")


def _meta_of(attack) -> dict:
    """The attack's meta, plus its goal's intent where the text is LM-written (is_benign None):
    reports and the attacker's history still know which goal it was written for."""
    meta = dict(attack.meta or {})
    if _lm_written(attack):
        meta["goal_is_benign"] = bool(attack.is_benign)
    return meta


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
    batch stays, and `job_resume` continues from there.
    """
    job_start(job=campaign, stage=STAGES[0])
    runner = _Runner(campaign=campaign, on_progress=on_progress)
    try:
        try:
            runner.attack()
            runner.respond()
            runner.critique()
            runner.items()
            runner.report()
        finally:
            # Tokens of an unfinished batch were spent all the same (a resume spends them again).
            try:
                runner.record_usage()
            except DatabaseError:
                logger.exception("Could not record campaign %s's token usage", campaign.pk)
    except JobCancelled:
        job_finish(job=campaign, status=JobStatus.CANCELLED)
        logger.info("Campaign %s cancelled", campaign.pk)
        return campaign
    except Exception as error:
        job_finish(job=campaign, status=JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        logger.exception("Campaign %s failed", campaign.pk)
        raise
    job_finish(job=campaign, status=JobStatus.SUCCEEDED)
    try:
        risk_discovery_after_campaign(campaign=campaign)
    except Exception:  # a follow-up must not turn a finished campaign into a failed task
        logger.exception("Could not queue risk discovery after campaign %s", campaign.pk)
    return campaign
