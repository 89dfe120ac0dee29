"""Reads of the oversight loop: what the reliability job is computed from, whether the latest
estimate is out of date, and what the Oversight page and API show (report, charts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Max

from alignment_core.critic.base import VERDICTS
from alignment_core.oversight import ExpertVerdict
from annotator.models import DECISIONS, JobStatus, Project, ReliabilityRun, Review, ReviewItem
from annotator.models.jobs import ACTIVE_STATUSES

# -- what the estimate is computed from ---------------------------------------------------------


@dataclass
class OversightInputs:
    """A project's expert verdicts (item and expert ids as text), with what scores them."""

    verdicts: list[ExpertVerdict] = field(default_factory=list)
    probes: set[tuple[str, str]] = field(default_factory=set)  # (item, expert) gold answers
    gold: dict[str, str] = field(default_factory=dict)
    adjudicated: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # expert id -> username


def oversight_inputs(*, project: Project) -> OversightInputs:
    """Every standing expert verdict of the project, in three queries plus one for names."""
    inputs = OversightInputs()
    rows = (Review.objects.filter(item__project=project, action__in=DECISIONS,
                                  undone_by__isnull=True)
            .order_by("id").values_list("item_id", "expert_id", "final_verdict", "blind",
                                        "seconds_spent", "gold_probe", "item__critique__verdict"))
    latest: dict[tuple[str, str], ExpertVerdict] = {}
    for item_id, expert_id, verdict, blind, seconds, probe, critic in rows:
        if verdict not in VERDICTS:
            continue
        key = (str(item_id), str(expert_id))
        # One verdict per expert and item (the queue never serves an item twice; the latest
        # wins should old data hold two). Zero seconds means the time was not measured.
        latest[key] = ExpertVerdict(item_id=key[0], expert_id=key[1], verdict=verdict,
                                    blind=blind, seconds=seconds or None,
                                    critic_verdict=critic if critic in VERDICTS else None)
        if probe:
            inputs.probes.add(key)
        else:
            inputs.probes.discard(key)
    inputs.verdicts = list(latest.values())
    labels = (ReviewItem.objects.filter(project=project, adjudicated=True)
              .exclude(final_verdict="").values_list("id", "final_verdict", "is_gold"))
    for item_id, verdict, is_gold in labels:
        (inputs.gold if is_gold else inputs.adjudicated)[str(item_id)] = verdict
    experts = {int(v.expert_id) for v in inputs.verdicts}
    inputs.names = {str(pk): name for pk, name in get_user_model().objects.filter(
        pk__in=experts).values_list("pk", "username")}
    return inputs


def oversight_fingerprint(*, project: Project) -> str:
    """What an estimate was computed from: the newest review of the project (every decision,
    undo and adjudication writes one) and the gold labels."""
    newest = Review.objects.filter(item__project=project).aggregate(newest=Max("id"))["newest"]
    gold = ReviewItem.objects.filter(project=project, is_gold=True).order_by("id")
    digest = hashlib.sha1(",".join(f"{pk}:{verdict}" for pk, verdict in gold.values_list(
        "id", "final_verdict")).encode(), usedforsecurity=False).hexdigest()
    return f"{newest or 0}:{digest}"


def reliability_latest(*, project: Project) -> ReliabilityRun | None:
    """The newest finished estimate (the one the page shows and snapshots use)."""
    return (ReliabilityRun.objects.filter(project=project, status=JobStatus.SUCCEEDED)
            .order_by("-finished_at", "-id").first())



def reliability_stale(*, project: Project) -> bool:
    """Whether the project has reviews or gold labels the latest estimate has not seen (False
    while it has no reviews at all: there is nothing to estimate)."""
    fingerprint = oversight_fingerprint(project=project)
    latest = reliability_latest(project=project)
    return not fingerprint.startswith("0:") and (latest is None
                                                 or latest.fingerprint != fingerprint)





@dataclass(frozen=True)
class OversightState:
    """What the page shows: the newest finished report, the run in progress or last failed (if
    newer), and whether reviews or gold labels arrived since the report."""

    latest: ReliabilityRun | None  # the newest succeeded run
    current: ReliabilityRun | None  # a queued or running run, else a failed/cancelled newer one
    stale: bool

    @property
    def report(self) -> dict | None:
        return self.latest.report if self.latest is not None else None

    @property
    def is_active(self) -> bool:
        return self.current is not None and self.current.status in ACTIVE_STATUSES


def oversight_state(*, project: Project) -> OversightState:
    latest = reliability_latest(project=project)
    newest = ReliabilityRun.objects.filter(project=project).order_by("-created_at", "-id").first()
    current = newest if newest is not None and newest.status != JobStatus.SUCCEEDED else None
    return OversightState(latest=latest, current=current, stale=reliability_stale(project=project))


def oversight_chart_data(*, report: dict | None) -> dict:
    """The two charts' series (static/js/oversight.js):

    gold: per expert with gold answers, gold accuracy and its interval (whiskers);
    speed: per expert, (seconds per item, accuracy) blind and assisted, against the reference
    labels (gold, else adjudicated), where the mode has both figures.
    """
    if not report:
        return {"gold": {"labels": [], "rate": [], "lo": [], "hi": [], "n": []}, "speed": []}
    gold = {"labels": [], "rate": [], "lo": [], "hi": [], "n": []}
    speed = []
    for row in report["experts"]:
        accuracy = (row.get("gold") or {}).get("accuracy") or {}
        if accuracy.get("n"):
            gold["labels"].append(row["username"])
            for key in ("rate", "lo", "hi", "n"):
                gold[key].append(accuracy[key])
        points = {}
        for mode in ("blind", "assisted"):
            figures = row["modes"][mode]
            if figures["accuracy"]["rate"] is not None and figures["seconds_per_item"]:
                points[mode] = [round(figures["seconds_per_item"], 2),
                                round(figures["accuracy"]["rate"], 4)]
        if points:
            speed.append({"expert": row["username"], **points})
    return {"gold": gold, "speed": speed}


def _matrix(confusion: dict[str, dict[str, float]] | None) -> list[tuple[str, list]]:
    """confusion[true][given] as rows in verdict order: (true verdict, [value per given])."""
    if not confusion:
        return []
    return [(true, [confusion[true].get(given, 0) for given in VERDICTS])
            for true in VERDICTS if true in confusion]


def oversight_expert_rows(*, report: dict | None) -> list[dict]:
    """The report's expert rows with their confusion matrices laid out as table rows
    (`estimated`: probabilities; `gold`: counts of gold answers)."""
    rows = []
    for row in (report or {}).get("experts", []):
        gold = row.get("gold") or {}
        rows.append({**row, "estimated_matrix": _matrix(row["confusion"]),
                     "gold_matrix": _matrix(gold.get("confusion"))})
    return rows
