"""Reads for the training, snapshot and learner pages (shared by the HTML views and the API)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from alignment_core.training.label_sources import LABEL_SOURCES
from annotator.models import Campaign, DatasetSnapshot, LearnerVersion, Project, TrainingRun


def snapshots_for(*, project: Project) -> QuerySet[DatasetSnapshot]:
    return DatasetSnapshot.objects.filter(project=project).select_related("created_by")


def with_source_counts(snapshots: QuerySet[DatasetSnapshot]) -> QuerySet[DatasetSnapshot]:
    """Each snapshot's items per label source in the same query (a list shows them all)."""
    return snapshots.annotate(**{
        f"items_{source}": Count("examples", filter=Q(examples__kind="sft",
                                                      examples__label_source=source))
        for source in LABEL_SOURCES})


def training_runs_for(*, project: Project) -> QuerySet[TrainingRun]:
    return (TrainingRun.objects.filter(project=project)
            .select_related("snapshot", "base_version", "output_version", "created_by")
            .defer("log", "loss_history", "evaluation"))


def learners_for(*, project: Project) -> QuerySet[LearnerVersion]:
    return (LearnerVersion.objects.filter(project=project)
            .select_related("parent", "previous_active", "promoted_by"))


def snapshot_campaign_choices(*, project: Project) -> list[tuple[str, str]]:
    """Campaigns whose items may be curated (held-out campaigns never feed training)."""
    campaigns = Campaign.objects.filter(project=project, held_out=False).only("id", "name")
    return [("", "All campaigns")] + [(str(c.pk), c.name) for c in campaigns]


def snapshot_category_choices(*, project: Project) -> list[tuple[str, str]]:
    categories = (project.attacks.exclude(category="").order_by("category")
                  .values_list("category", flat=True).distinct())
    return [("", "All categories")] + [(c, c.replace("_", " ")) for c in categories]


def training_progress(run: TrainingRun) -> dict[str, Any]:
    """What the live progress panel shows: step / total, the latest step's figures, the curve."""
    stage = (run.progress or {}).get(run.stage or "train") or {}
    train = (run.progress or {}).get("train") or {}
    history = run.loss_history or []
    last = history[-1] if history else {}
    done, total = stage.get("done", 0), stage.get("total", 0)
    return {
        "stage": run.stage or "train",
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "train_done": train.get("done", 0),
        "train_total": train.get("total", 0),
        "last": last,
        "eta_s": train.get("remaining_s") if run.stage == "train" else stage.get("eta_s"),
        "chart": {
            "step": [h["step"] for h in history],
            "loss": [h["loss"] for h in history],
            "reward_accuracy": [h.get("reward_accuracy") for h in history],
        },
    }


def evaluation_rows(run: TrainingRun) -> list[dict[str, Any]]:
    """Base vs candidate, one row per figure, for the comparison page."""
    evaluation = run.evaluation or {}
    base, candidate = evaluation.get("base"), evaluation.get("candidate")
    if not base or not candidate:
        return []
    rows = [
        {"label": "Attack success rate (harmful attacks)", "base": base["overall"],
         "candidate": candidate["overall"], "lower_is_better": True},
        {"label": "Refusal rate (harmful attacks)", "base": base["refusal"],
         "candidate": candidate["refusal"], "lower_is_better": False},
        {"label": "Over-refusal rate (benign twins)", "base": base["over_refusal"],
         "candidate": candidate["over_refusal"], "lower_is_better": True},
    ]
    rows.extend({"label": f"Attack success: {name.replace('_', ' ')}",
                 "base": base["by_strategy"].get(name),
                 "candidate": candidate["by_strategy"].get(name), "lower_is_better": True}
                for name in sorted(set(base["by_strategy"]) | set(candidate["by_strategy"])))
    for row in rows:
        b, c = row["base"], row["candidate"]
        row["delta"] = (c["rate"] - b["rate"]) if b and c else None
        if row["delta"] is None or abs(row["delta"]) < 1e-9:
            row["better"] = None
        else:
            row["better"] = (row["delta"] < 0) == row["lower_is_better"]
    return rows


def held_out_rounds(*, project: Project) -> dict[str, Any]:
    """Every evaluated training run measured on the same held-out attacks as the latest one,
    oldest first (the closed loop's rounds), and the active learner's figures before the first
    and after each (a run whose candidate was never promoted leaves them as they were)."""
    from alignment_core.closed_loop import HeldOut, active_after_rounds

    runs = [run for run in (TrainingRun.objects.filter(project=project)
                            .select_related("output_version").order_by("pk"))
            if (run.evaluation or {}).get("summary")]

    def key(run: TrainingRun) -> tuple:
        e = run.evaluation
        return e.get("held_out_seed"), e.get("budget"), e.get("n_attacks"), e.get("critic_version")

    runs = [run for run in runs if key(run) == key(runs[-1])] if runs else []
    rows = []
    for number, run in enumerate(runs, start=1):
        summary = run.evaluation["summary"]
        version = run.output_version
        rows.append({"number": number, "run": run, "base": summary["base"],
                     "candidate": summary["candidate"], "candidate_name": version.name,
                     "promoted": version.promoted_at is not None,
                     "reason": (version.metrics.get("loop") or {}).get("reason", "")})
    if not rows:
        return {"rows": [], "n_attacks": 0, "chart": {"labels": [], "asr": [], "over_refusal": []}}
    def figures(summary: dict) -> HeldOut:
        return HeldOut(summary["asr"], summary["over_refusal"])

    trail = active_after_rounds(figures(rows[0]["base"]),
                                [(figures(r["candidate"]), r["promoted"]) for r in rows])
    return {"rows": rows, "n_attacks": runs[-1].evaluation.get("n_attacks"),
            "chart": {"labels": ["start"] + [f"after {r['number']}" for r in rows],
                      "asr": [f.asr for f in trail],
                      "over_refusal": [f.over_refusal for f in trail]}}
