"""The study and rounds charts draw in a real browser under the strict CSP, with no script error;
a hostile snapshot name stays text."""

from __future__ import annotations

import pytest

from annotator.models import DatasetSnapshot, LabelStudy, LearnerVersion, Role, TrainingRun
from annotator.services.learners import learner_register_candidate
from tests.browser.conftest import login
from tests.factories import PASSWORD, active_learner, add_member, make_project

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = "<img src=x onerror=alert(1)>"


def summary(asr: float, over_refusal: float) -> dict:
    return {"asr": asr, "asr_lo": max(asr - 0.1, 0), "asr_hi": min(asr + 0.1, 1), "asr_n": 96,
            "over_refusal": over_refusal, "over_refusal_lo": 0.0, "over_refusal_hi": 0.3,
            "over_refusal_n": 32, "unsafe_severity_mean": 2.0}


def arm(name: str, share: float, minutes: float, labels: int, asr: float, pgr: float) -> dict:
    return {"name": name, "expert_share": share, "expert_minutes": minutes,
            "expert_labels": labels, **summary(asr, 0.1), "pgr": pgr, "pgr_reason": ""}


def test_the_study_and_rounds_charts_draw(page, page_dialogs, live_server):
    project = make_project("Charts")
    admin = add_member(project, Role.ADMIN)
    snapshot = DatasetSnapshot.objects.create(project=project, name=HOSTILE, content_hash="0" * 64)
    base = active_learner(project)
    rows = {"critic": arm("critic", 0.0, 0.0, 0, 0.6, 0.5), "expert": arm("expert", 1.0, 40.0, 40, 0.4, 1.0),
            "mix_50": arm("mix_50", 0.5, 20.0, 20, 0.45, 0.875)}
    study = LabelStudy.objects.create(
        project=project, snapshot=snapshot, base_version=base, name="charts", status="succeeded",
        results={"items": 40, "held_out": 128, "base": summary(0.8, 0.1),
                 "arms": {name: summary(row["asr"], 0.1) for name, row in rows.items()},
                 "report": {"metric": "attack_success", "pgr": 0.5, "pgr_reason": "",
                            "arms": list(rows.values())}})
    for asr in (0.6, 0.4):
        run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_version=base,
                                         status="succeeded")
        learner_register_candidate(run=run, metrics={}, finished=True)
        run.evaluation = {"held_out_seed": 1, "budget": 128, "n_attacks": 128, "critic_version": "c",
                          "summary": {"base": summary(0.8 if asr == 0.6 else 0.6, 0.1),
                                      "candidate": summary(asr, 0.1)}}
        run.save(update_fields=["evaluation"])
    errors: list[str] = []  # script errors and CSP refusals both land here
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and
            "favicon" not in (m.location or {}).get("url", "") else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, live_server, admin, PASSWORD)

    page.goto(f"{live_server.url}{study.get_absolute_url()}")
    page.wait_for_selector("#study-chart canvas")
    legend = page.locator("#study-chart .u-legend").text_content()
    assert "attack success" in legend and "over-refusal" in legend
    assert HOSTILE in page.inner_text("dl")
    assert page.locator("dl img").count() == 0

    page.goto(f"{live_server.url}/p/{project.slug}/learners/")
    page.wait_for_selector("#rounds-chart canvas")
    assert "over-refusal" in page.locator("#rounds-chart .u-legend").text_content()
    assert "not promoted" in page.inner_text("#rounds")
    assert page_dialogs == [] and errors == []
    assert LearnerVersion.objects.filter(project=project).count() == 3
