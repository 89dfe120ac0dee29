"""Reads for the label-source study pages and API: the stage rows, the results table, the chart."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotator.models import LabelStudy, Project

BASE_LABEL = "base model"


def studies_for(*, project: Project) -> QuerySet[LabelStudy]:
    return (LabelStudy.objects.filter(project=project)
            .select_related("snapshot", "base_version", "created_by"))


def arm_names(study: LabelStudy) -> list[str]:
    """The candidates in the order the job trains them (alignment_core.label_study.build_arms)."""
    return ["critic", "expert", f"mix_{round(study.mix_share * 100)}"]


def arm_label(name: str) -> str:
    if name.startswith("mix_"):
        return f"mix ({name[4:]}% expert)"
    return {"critic": "critic labels", "expert": "expert labels"}.get(name, name)


def study_stage_rows(*, study: LabelStudy) -> list[dict[str, Any]]:
    """One row per stage for the progress table: the base model, then each candidate."""
    progress = study.progress or {}
    rows = []
    for name in ["base", *arm_names(study)]:
        entry = progress.get(name) or {}
        done, total = entry.get("done", 0), entry.get("total", 0)
        finished = (name == "base" and "base" in study.results) or \
            name in (study.results.get("arms") or {})
        rows.append({
            "stage": name, "label": BASE_LABEL if name == "base" else arm_label(name),
            "done": total if finished else done, "total": total, "started": bool(entry),
            "finished": finished, "phase": "done" if finished else entry.get("phase", ""),
            "current": study.is_active and study.stage == name,
            "percent": 100 if finished else (round(100 * done / total) if total else 0),
        })
    return rows


def study_result_rows(*, study: LabelStudy) -> list[dict[str, Any]]:
    """The base model and every finished candidate: attack success, over-refusal, expert
    minutes and labels, PGR (from the report once it exists)."""
    results = study.results or {}
    rows = []
    if "base" in results:
        rows.append({"name": "base", "label": BASE_LABEL, "expert_share": None,
                     "expert_minutes": None, "expert_labels": None, "pgr": None,
                     "pgr_reason": "", **results["base"]})
    report = {row["name"]: row for row in (results.get("report") or {}).get("arms", [])}
    arms = results.get("arms") or {}
    critic, expert, mix = arm_names(study)
    for name in (critic, mix, expert):  # from the weakest supervisor to the strongest
        if name in report:
            rows.append({"label": arm_label(name), **report[name]})
        elif name in arms:
            rows.append({"name": name, "label": arm_label(name), "expert_share": None,
                         "expert_minutes": None, "expert_labels": None, "pgr": None,
                         "pgr_reason": "", **arms[name]})
    return rows


def study_chart_data(*, rows: list[dict[str, Any]]) -> dict[str, list]:
    """The series the study page's uPlot chart draws (passed with json_script)."""
    return {
        "labels": [row["label"] for row in rows],
        "asr": [row["asr"] for row in rows], "asr_lo": [row["asr_lo"] for row in rows],
        "asr_hi": [row["asr_hi"] for row in rows],
        "over_refusal": [row["over_refusal"] for row in rows],
        "minutes": [row["expert_minutes"] for row in rows],
    }
