"""Reads for risk discovery: the successful attacks it clusters, the categories it knows, and the
Risks page (clusters, examples, the map)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import QuerySet

from alignment_core.attacker.types import Behaviour
from alignment_core.risks import RiskAttack, RiskCluster, attack_weight
from annotator.models import (
    RISK_STAGE_LABELS,
    RISK_STAGES,
    Critique,
    DiscoveredRisk,
    ItemState,
    JobStatus,
    Project,
    Response,
    RiskCategory,
    RiskDecision,
    RiskDiscovery,
)

EXCERPT = 600  # characters of an example's attack and answer on the page
MAP_COLOURS = 10  # open clusters drawn in their own colour; the rest share one grey
CHUNK = 900  # ids per IN (...) query, under SQLite's limit on bound parameters


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def risk_attacks(*, project: Project, response_ids: Sequence[int] | None = None,
                 ) -> tuple[list[RiskAttack], list[int]]:
    """The project's judged answers as alignment_core RiskAttacks (one per Response, id = its
    pk), with the campaigns and imports they came from.

    The verdict is the final one: the experts' where they decided (item DONE), else the newest
    critique's (auto-accepted items carry the critic's own). An unsafe verdict experts decided
    is expert-confirmed and weighs most (`attack_weight`). Benign twins are left out (they are
    not attacks), and so are held-out campaigns, whose attacks must stay independent of what the
    attacker is seeded with (as in `attack_history`).
    """
    # is_benign None (an imported prompt nobody labelled) counts as an attack: the verdict
    # decides whether it succeeded.
    critiques = (Critique.objects.filter(response__attack__project=project)
                 .exclude(response__attack__is_benign=True)
                 .exclude(response__attack__campaign__held_out=True))
    if response_ids is not None:
        critiques = critiques.filter(response_id__in=list(response_ids))
    # 1. The newest critique of every response (small fields only: this reads every judged one).
    latest: dict[int, dict] = {}
    for row in critiques.order_by("id").values(
            "response_id", "verdict", "severity", "review_item__state",
            "review_item__final_verdict", "review_item__final_severity",
            "response__attack__campaign_id"):
        latest[row["response_id"]] = row
    campaigns = sorted({row["response__attack__campaign_id"] for row in latest.values()
                        if row["response__attack__campaign_id"] is not None})
    judged = {}
    for response_id, row in latest.items():
        experts = row["review_item__state"] == ItemState.DONE and row["review_item__final_verdict"]
        verdict = row["review_item__final_verdict"] if experts else row["verdict"]
        severity = row["review_item__final_severity"] if experts else None
        judged[response_id] = (verdict, bool(experts), row["severity"] if severity is None
                               else severity)
    # 2. Texts only for the successful ones (the only ones discovery keeps).
    wanted = sorted(pk for pk, (verdict, confirmed, _) in judged.items()
                    if attack_weight(verdict, confirmed) > 0 or response_ids is not None)
    attacks = []
    for chunk in _chunks(wanted):
        for row in Response.objects.filter(pk__in=chunk).values(
                "id", "text", "attack__text", "attack__category").order_by("id"):
            verdict, confirmed, severity = judged[row["id"]]
            attacks.append(RiskAttack(
                id=str(row["id"]), attack=row["attack__text"], answer=row["text"],
                category=row["attack__category"] or None, verdict=verdict,
                severity=min(max(int(severity or 0), 0), 4),
                weight=attack_weight(verdict, confirmed)))
    return attacks, campaigns


def adopted_categories(*, project: Project) -> QuerySet[RiskCategory]:
    return RiskCategory.objects.filter(project=project).order_by("name")


def adopted_behaviours(*, project: Project) -> list[Behaviour]:
    """The seed behaviours of every category adopted in the project, for the attacker."""
    return [Behaviour(**row) for category in adopted_categories(project=project)
            for row in category.behaviours]


def known_risk_categories(*, project: Project) -> dict[str, list[str]]:
    """Category -> example requests that discovery measures novelty against: the attacker's
    seed behaviours, its canary objectives, and the seeds of the project's adopted categories."""
    from alignment_core.attacker import CANARY_CATEGORY, behaviours, canaries
    from alignment_core.risks import known_from_behaviours

    known = known_from_behaviours([*behaviours(), *adopted_behaviours(project=project)])
    known[CANARY_CATEGORY] = [canary.objective for canary in canaries()]
    return known


def latest_discovery(*, project: Project) -> RiskDiscovery | None:
    """The newest run that finished: the one whose clusters the page and the API show."""
    return (RiskDiscovery.objects.filter(project=project, status=JobStatus.SUCCEEDED)
            .order_by("-finished_at", "-id").first())


def decided_clusters(*, project: Project) -> list[tuple[RiskCluster, int]]:
    """Per decision of the project, its newest cluster (the one a new run must continue) with
    the decision's id."""
    newest: dict[int, DiscoveredRisk] = {}
    for risk in (DiscoveredRisk.objects.filter(decision__project=project)
                 .order_by("discovery__finished_at", "discovery_id")):
        newest[risk.decision_id] = risk
    return [(risk.cluster(), decision_id) for decision_id, risk in newest.items()]


def discovery_stage_rows(*, discovery: RiskDiscovery) -> list[dict]:
    """One row per stage for the progress bars."""
    rows = []
    for stage in RISK_STAGES:
        entry = (discovery.progress or {}).get(stage) or {}
        done, total = int(entry.get("done") or 0), int(entry.get("total") or 0)
        rows.append({"stage": stage, "label": RISK_STAGE_LABELS[stage], "done": done,
                     "total": total, "started": bool(entry),
                     "current": discovery.is_active and discovery.stage == stage})
    return rows


def _examples(risks: Sequence[DiscoveredRisk]) -> dict[int, dict]:
    ids = sorted({int(i) for risk in risks for i in risk.data.get("example_ids", [])})
    found = {}
    for chunk in _chunks(ids):
        for row in Response.objects.filter(pk__in=chunk).values(
                "id", "text", "attack__text", "attack__strategy", "attack__category"):
            found[row["id"]] = {"attack": row["attack__text"][:EXCERPT],
                                "answer": row["text"][:EXCERPT],
                                "strategy": row["attack__strategy"],
                                "category": row["attack__category"]}
    return found


def risk_rows(*, discovery: RiskDiscovery) -> list[dict]:
    """The run's clusters by score, each with its decision and a few example attacks (those
    still stored) with their answers, and its colour on the map (`colour` None: grey)."""
    risks = list(discovery.risks.select_related("decision__category").order_by("rank"))
    examples = _examples(risks)
    rows, colour = [], 0
    for risk in risks:
        decision = risk.decision
        shown = decision is None and colour < MAP_COLOURS
        rows.append({"risk": risk, "cluster": risk.data, "decision": decision,
                     "examples": [examples[int(i)] for i in risk.data.get("example_ids", [])
                                  if int(i) in examples],
                     "colour": colour if shown else None,
                     "filed_under": [(name or "none", count) for name, count
                                     in risk.data.get("filed_under", {}).items()]})
        colour += shown
    return rows


def risk_map_data(*, discovery: RiskDiscovery, rows: Sequence[dict]) -> dict:
    """The points the page's scatter plot draws (passed with json_script): one series per
    coloured cluster, then the other clusters and the noise."""
    colour_of = {row["risk"].key: row["colour"] for row in rows}
    name_of = {row["risk"].key: row["cluster"].get("name", "") for row in rows}
    series: dict[str, dict] = {}
    for point in discovery.points or []:
        key = point.get("cluster_id")
        if key is None:
            group = "noise"
        elif colour_of.get(key) is None:
            group = "other"
        else:
            group = key
        entry = series.setdefault(group, {"x": [], "y": []})
        entry["x"].append(point["x"])
        entry["y"].append(point["y"])
    ordered = [{"label": name_of[row["risk"].key], "colour": row["colour"],
                **series.get(row["risk"].key, {"x": [], "y": []})}
               for row in rows if row["colour"] is not None]
    for group, label in (("other", "other clusters"), ("noise", "in no cluster")):
        if group in series:
            ordered.append({"label": label, "colour": group, **series[group]})
    return {"series": ordered}


def risk_status(*, project: Project) -> dict:
    """What the page's status panel shows, and all its poll reads: the newest finished run (its
    campaigns and cluster count), and the run in progress (or the last one that failed) if
    newer, with its stages."""
    latest = latest_discovery(project=project)
    newest = RiskDiscovery.objects.filter(project=project).order_by("-created_at", "-id").first()
    current = newest if newest is not None and newest != latest else None
    return {
        "discovery": latest,
        "campaigns": list(latest.campaigns.order_by("created_at").values("id", "name"))
        if latest else [],
        "current": current,
        "cluster_count": latest.risks.count() if latest else 0,
        "stages": discovery_stage_rows(discovery=current) if current else [],
    }


def risk_page(*, project: Project) -> dict:
    """What the Risks page shows: the status panel's reads, the newest finished run's clusters
    split into open, dismissed and adopted, its map, and the adopted categories."""
    status = risk_status(project=project)
    latest = status["discovery"]
    rows = risk_rows(discovery=latest) if latest else []
    return {
        **status,
        "open": [row for row in rows if row["decision"] is None],
        "dismissed": [row for row in rows if row["decision"] is not None
                      and row["decision"].action == RiskDecision.Action.DISMISS],
        "adopted": [row for row in rows if row["decision"] is not None
                    and row["decision"].action == RiskDecision.Action.ADOPT],
        "map": risk_map_data(discovery=latest, rows=rows) if latest else None,
        "categories": list(adopted_categories(project=project)),
    }


def discovery_list(*, project: Project) -> QuerySet[RiskDiscovery]:
    return RiskDiscovery.objects.filter(project=project).select_related("created_by")
