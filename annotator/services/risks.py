"""Writes for risk discovery: start a run (on demand, or after a campaign), run it, and adopt or
dismiss a cluster.

The run is a background job (`RiskDiscovery`, a `Job`): it reads the project's judged attacks
(selectors.risks.risk_attacks), hands them to `alignment_core.risks.discover` with the known
categories and an embedding cache, and stores the clusters in one transaction, together with the
admins' earlier decisions carried over to the clusters that continue the decided ones. Cancel
stops it between stages; resume runs it again, and the embedding cache (every vector computed
before the stop is kept) makes the second run cheap. Nothing of a run is visible until its
clusters are all saved.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from alignment_core.risks import (
    Discovery,
    DiscoveryConfig,
    Generate,
    adopt_cluster,
    carry_over,
    discover,
)
from alignment_core.risks.vector_store import SqliteVectorCache
from annotator.models import (
    Campaign,
    DiscoveredRisk,
    JobStatus,
    LearnerVersion,
    Project,
    RiskCategory,
    RiskDecision,
    RiskDiscovery,
)
from annotator.models.jobs import ACTIVE_STATUSES
from annotator.selectors.risks import (
    adopted_categories,
    decided_clusters,
    known_risk_categories,
    latest_discovery,
    risk_attacks,
)
from annotator.services.jobs import (
    JobCancelled,
    JobStateError,
    job_enqueue,
    job_finish,
    job_progress,
    job_start,
)

logger = logging.getLogger(__name__)

# Under DATA_DIR; derived data, safe to delete (see alignment_core/risks/vector_store.py).
EMBEDDING_CACHE = "embedding-cache.sqlite3"


# -- start --------------------------------------------------------------------------------------


@transaction.atomic
def risk_discovery_start(*, project: Project, user=None,
                         trigger: str = RiskDiscovery.Trigger.MANUAL,
                         after_campaign: Campaign | None = None) -> RiskDiscovery:
    """Queue a discovery run over the project's successful attacks (enqueued on commit).

    An admin's request is refused while a run is queued or running. After a campaign, a run
    still waiting in the queue is enough (it reads the attacks when it starts, this campaign's
    included), so none is added; a running one may have read them before the campaign ended,
    so a new one is queued behind it.
    """
    # Lock the project's row so two campaigns finishing together queue one run, not two.
    list(Project.objects.select_for_update().filter(pk=project.pk).values_list("pk", flat=True))
    active = RiskDiscovery.objects.filter(project=project, status__in=ACTIVE_STATUSES)
    if trigger == RiskDiscovery.Trigger.MANUAL and active.exists():
        raise JobStateError("A risk discovery run is already queued or running; wait for it "
                            "to finish (or cancel it) before starting another.")
    waiting = active.filter(status=JobStatus.QUEUED).first()
    if trigger == RiskDiscovery.Trigger.CAMPAIGN and waiting is not None:
        return waiting
    discovery = RiskDiscovery(project=project, trigger=trigger, after_campaign=after_campaign,
                              created_by=user if user is not None and user.is_authenticated
                              else None)
    discovery.full_clean()
    discovery.save()
    job_enqueue(job=discovery)
    return discovery


def risk_discovery_after_campaign(*, campaign: Campaign) -> RiskDiscovery | None:
    """The campaign pipeline's hook once a campaign succeeded: look for new risks among its
    attacks. Held-out campaigns add nothing discovery reads, so they start nothing."""
    if campaign.held_out:
        return None
    return risk_discovery_start(project=campaign.project, trigger=RiskDiscovery.Trigger.CAMPAIGN,
                                after_campaign=campaign)


# -- the job ------------------------------------------------------------------------------------


def _namer(project: Project) -> Generate | None:
    """The critic's language model (the active learner, as in campaigns) names the clusters when
    campaigns run the layered critic; its names are kept only when they pass alignment_core's
    sanity check, else the keywords name them. Loaded only if there is a cluster to name."""
    if settings.CAMPAIGN_CRITIC != "layered":
        return None
    version = LearnerVersion.objects.filter(project=project,
                                            status=LearnerVersion.Status.ACTIVE).first()
    if version is None:
        return None

    def generate(prompts: list[list[dict]]) -> list[str]:
        from alignment_core.learner import Learner
        from alignment_core.risks import learner_generate
        from annotator.learner_runtime import loaded_for

        return learner_generate(Learner(loaded_for(version)))(prompts)

    return generate


def _progress(discovery: RiskDiscovery) -> Callable[[str, int, int], None]:
    def report(stage: str, done: int, total: int) -> None:
        job_progress(job=discovery, stage=stage, done=done, total=total)

    return report


def _save(*, discovery: RiskDiscovery, result: Discovery, campaign_ids: list[int],
          vectors: dict[str, int]) -> None:
    """Store every cluster, carry the earlier decisions over, and finish: one transaction."""
    clusters = result.clusters
    with transaction.atomic():
        discovery.risks.all().delete()  # a resumed run replaces what a crash left unfinished
        decided = decided_clusters(project=discovery.project)
        continues = carry_over(clusters, [cluster for cluster, _ in decided])
        decision_of = {cluster.id: decision_id for cluster, decision_id in decided}
        DiscoveredRisk.objects.bulk_create([
            DiscoveredRisk(discovery=discovery, key=cluster.id, rank=rank, score=cluster.score,
                           data=cluster.to_dict(),
                           decision_id=decision_of.get(continues.get(cluster.id)))
            for rank, cluster in enumerate(clusters)])
        discovery.campaigns.set(campaign_ids)
        discovery.considered, discovery.noise = result.considered, result.noise
        discovery.points = [dataclasses.asdict(point) for point in result.points]
        discovery.config = dataclasses.asdict(result.config)
        discovery.save(update_fields=["considered", "noise", "points", "config"])
        job_progress(job=discovery, stage="save", done=len(clusters), total=len(clusters),
                     **vectors)
        job_finish(job=discovery, status=JobStatus.SUCCEEDED)


def risk_discovery_execute(*, discovery: RiskDiscovery) -> RiskDiscovery:
    """Run a discovery in this process (the task calls this); see the module docstring.

    JobCancelled finishes it as CANCELLED; any other error marks it FAILED with the message and
    is re-raised. Either way the vectors embedded so far stay in the cache.
    """
    job_start(job=discovery, stage="collect")
    cache = None
    try:
        project = discovery.project
        job_progress(job=discovery, stage="collect", done=0, total=1)
        attacks, campaign_ids = risk_attacks(project=project)
        job_progress(job=discovery, stage="collect", done=len(attacks), total=len(attacks))
        cache = SqliteVectorCache(settings.DATA_DIR / EMBEDDING_CACHE)
        result = discover(attacks, known=known_risk_categories(project=project),
                          config=DiscoveryConfig(), generate=_namer(project), cache=cache,
                          progress=_progress(discovery))
        # How much the cache saved, for the run's progress (and the tests): vectors read back
        # and vectors newly embedded.
        vectors = {"vectors_cached": cache.hits, "vectors_new": cache.flush()}
        cache.close()
        cache = None
        _save(discovery=discovery, result=result, campaign_ids=campaign_ids, vectors=vectors)
    except JobCancelled:
        job_finish(job=discovery, status=JobStatus.CANCELLED)
        logger.info("Risk discovery %s cancelled", discovery.pk)
    except Exception as error:
        job_finish(job=discovery, status=JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        logger.exception("Risk discovery %s failed", discovery.pk)
        raise
    finally:
        if cache is not None:
            cache.close()  # keep what was embedded before the stop
    return discovery


# -- decisions ----------------------------------------------------------------------------------


def _open_for_decision(risk: DiscoveredRisk) -> DiscoveredRisk:
    """The cluster's row, locked; refused when decided already or from an earlier run."""
    locked = (DiscoveredRisk.objects.select_for_update().select_related("discovery__project")
              .get(pk=risk.pk))
    if locked.decision_id is not None:
        verb = RiskDecision.objects.get(pk=locked.decision_id).get_action_display().lower()
        raise ValidationError(f"This cluster was {verb} already.")
    if latest_discovery(project=locked.discovery.project) != locked.discovery:
        raise ValidationError("A newer discovery run replaced this cluster; reload the Risks "
                              "page and decide on its clusters.")
    return locked


def _bundled_ids() -> set[str]:
    from alignment_core.attacker import behaviours

    return {behaviour.id for behaviour in behaviours()}


@transaction.atomic
def risk_adopt(*, risk: DiscoveredRisk, user, category: str) -> RiskCategory:
    """Turn a cluster into a new category of the project: its representative requests become
    seed behaviours that every later campaign attacks with. A bad or taken name is a
    ValidationError on `category`, and nothing changes."""
    if not category.strip():
        raise ValidationError({"category": ["Name the new category, e.g. ivory_trade."]})
    locked = _open_for_decision(risk)
    project = locked.discovery.project
    cluster = locked.cluster()
    attacks, _ = risk_attacks(project=project,
                              response_ids=[int(i) for i in cluster.member_ids])
    present = {attack.id for attack in attacks}
    members = [i for i in cluster.member_ids if i in present]
    if not members:
        raise ValidationError("The attacks of this cluster no longer exist; run discovery again.")
    taken = list(adopted_categories(project=project).values_list("name", flat=True))
    try:
        adoption = adopt_cluster(dataclasses.replace(cluster, member_ids=members), attacks,
                                 category=category, taken=taken)
    except ValueError as error:
        message = str(error)
        raise ValidationError({"category": [message[:1].upper() + message[1:]]}) from None
    clash = sorted({b.id for b in adoption.behaviours} & _bundled_ids())
    if clash:
        raise ValidationError({"category": [(
            f"{adoption.category!r} would give its seeds the ids of bundled behaviours "
            f"({', '.join(clash[:3])}); choose another name.")]})
    adopted = RiskCategory(project=project, name=adoption.category, title=adoption.name[:120],
                           keywords=list(adoption.keywords),
                           behaviours=[dataclasses.asdict(b) for b in adoption.behaviours],
                           source_ids=list(adoption.source_ids),
                           created_by=user if user is not None and user.is_authenticated
                           else None)
    adopted.full_clean()
    adopted.save()
    _decide(locked, user=user, action=RiskDecision.Action.ADOPT, category=adopted)
    return adopted


@transaction.atomic
def risk_dismiss(*, risk: DiscoveredRisk, user) -> RiskDecision:
    """Hide a cluster from the Risks page; later runs remember it (carry_over)."""
    return _decide(_open_for_decision(risk), user=user, action=RiskDecision.Action.DISMISS)


def _decide(risk: DiscoveredRisk, *, user, action: str,
            category: RiskCategory | None = None) -> RiskDecision:
    decision = RiskDecision(project=risk.discovery.project, action=action, cluster_key=risk.key,
                            category=category,
                            decided_by=user if user is not None and user.is_authenticated
                            else None)
    decision.full_clean()
    decision.save()
    risk.decision = decision
    risk.save(update_fields=["decision"])
    return decision
