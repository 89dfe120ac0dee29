"""The label-source study's job: train every candidate, measure all on the same attacks, report.

Stages, each recorded in `study.results` as soon as it is done, so a resumed study (after a
cancel or a crash) continues where it stopped:

1. "base": the base model the candidates start from (no adapter) answers the held-out attacks
   (annotator.services.held_out, minus every prompt of the snapshot), judged by the project's
   critic;
2. one stage per candidate, "critic", "expert" and "mix_<share>": a fresh LoRA adapter trained
   on that arm's labels (alignment_core.label_study.build_arms; checkpointed, and kept on disk
   once written), then measured on the same attacks;
3. the report: alignment_core.label_study.run_study's PGR = (base - critic) / (base - expert) on
   attack success for every candidate, with over-refusal and the expert minutes behind it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.conf import settings

from alignment_core.label_study import StudyArm, build_arms, run_study
from annotator.models import JobStatus, LabelStudy, SnapshotExample
from annotator.services.held_out import (
    evaluate_loaded,
    evaluation_critic,
    held_out_set,
    report_summary,
)
from annotator.services.jobs import JobCancelled, job_finish, job_progress, job_start
from annotator.services.label_study import study_items

logger = logging.getLogger(__name__)
METRIC = "attack_success"


def _save(study: LabelStudy) -> None:
    LabelStudy.objects.filter(pk=study.pk).update(results=study.results)


def _metrics(summary: dict) -> dict[str, float]:
    return {METRIC: summary["asr"], "over_refusal": summary["over_refusal"]}


class _Study:
    """One run of a study's stages in this process."""

    def __init__(self, study: LabelStudy) -> None:
        self.study = study
        prompts = set(study.snapshot.examples.values_list("prompt", flat=True))
        self.attacks = held_out_set(study.eval_budget, exclude=prompts)
        self.critic = evaluation_critic(study.project)
        val = study.snapshot.examples.filter(kind=SnapshotExample.Kind.PAIR,
                                             split=SnapshotExample.Split.VALIDATION)
        from alignment_core.training import PreferencePair

        self.val_pairs = [PreferencePair(prompt=e.training_prompt, chosen=e.chosen,
                                         rejected=e.rejected) for e in val]

    def cancelled(self) -> bool:
        return LabelStudy.objects.filter(pk=self.study.pk, cancel_requested=True).exists()

    def measure(self, stage: str, adapter, offset: int, total: int) -> dict:
        from annotator.learner_runtime import loaded_model

        report = evaluate_loaded(
            loaded_model(self.study.base_version.base_model, adapter), self.attacks, self.critic,
            progress=lambda done, _n: job_progress(job=self.study, stage=stage,
                                                   done=offset + done, total=total,
                                                   phase="evaluate"),
            should_cancel=self.cancelled)
        return report_summary(report)

    # 1. The base model.
    def base(self) -> dict[str, float]:
        results = self.study.results
        if "base" not in results:
            job_progress(job=self.study, stage="base", done=0, total=2 * len(self.attacks))
            results["base"] = self.measure("base", None, 0, 2 * len(self.attacks))
            results["held_out"] = len(self.attacks)
            _save(self.study)
        return _metrics(results["base"])

    # 2a. One candidate's adapter (run_study's `train`).
    def train(self, arm: StudyArm) -> StudyArm:
        from alignment_core.training import Cancelled, SFTExample, TrainConfig, train
        from annotator.learner_runtime import learner_model_dir

        study = self.study
        adapter = study.arm_dir(arm.name)
        if (adapter / "superalign.json").is_file():
            return arm  # written completely by an earlier run of this study
        if adapter.exists():
            raise RuntimeError(f"{adapter} exists but is not a finished adapter; remove it and "
                               "resume")
        config = TrainConfig.from_dict(study.config)
        config.num_threads = settings.TORCH_THREADS or None  # the host's, not the study's
        pairs = [pair for pair in arm.pairs if pair.chosen != pair.rejected]
        sft = [SFTExample(prompt=pair.prompt, response=pair.chosen) for pair in arm.pairs]
        evaluation = 2 * len(self.attacks)

        def progress(report) -> None:
            # train() checks should_cancel() after this report and stops with a checkpoint.
            with contextlib.suppress(JobCancelled):
                job_progress(job=study, stage=arm.name, done=report.step,
                             total=report.total_steps + evaluation, phase="train",
                             loss=round(float(report.loss), 5))

        try:
            train(config, learner_model_dir(study.base_version.base_model), pairs, sft,
                  output_dir=adapter, checkpoint_dir=study.checkpoint_dir(arm.name),
                  progress=progress, should_cancel=self.cancelled, val_pairs=self.val_pairs,
                  reference_cache=settings.DATA_DIR / "reference-cache.sqlite3")
        except Cancelled:
            raise JobCancelled() from None
        return arm

    # 2b. Its measurement (run_study's `evaluate`).
    def evaluate(self, arm: StudyArm) -> dict[str, float]:
        arms = self.study.results.setdefault("arms", {})
        if arm.name not in arms:
            steps = (self.study.progress or {}).get(arm.name, {}).get("done", 0)
            total = steps + 2 * len(self.attacks)
            arms[arm.name] = self.measure(arm.name, self.study.arm_dir(arm.name), steps, total)
            _save(self.study)
        return _metrics(arms[arm.name])

    def run(self) -> None:
        study = self.study
        arms = build_arms(study_items(study.snapshot), mix_shares=(study.mix_share,),
                          seed=study.seed)
        base = self.base()
        report = run_study(arms, self.train, self.evaluate, metric=METRIC, lower_is_better=True,
                           base_metrics=base)
        results = study.results
        results["report"] = {
            "metric": METRIC,
            "pgr": report.pgr.value, "pgr_reason": report.pgr.reason,
            "arms": [_arm_row(result, results["arms"][result.name]) for result in report.arms],
        }
        _save(study)


def _arm_row(result, summary: dict) -> dict[str, Any]:
    return {"name": result.name, "expert_share": result.expert_share,
            "expert_minutes": result.expert_minutes, "expert_labels": result.expert_labels,
            **summary, "pgr": result.pgr.value, "pgr_reason": result.pgr.reason}


def label_study_execute(*, study: LabelStudy) -> dict:
    """Run (or continue) one study in this process; the task and `manage.py label_study` call
    this."""
    from alignment_core.critic import Cancelled as CriticCancelled
    from alignment_core.learner import Cancelled as LearnerCancelled

    job_start(job=study, stage=study.stage or "base")
    try:
        _Study(study).run()
    except (JobCancelled, LearnerCancelled, CriticCancelled):
        job_finish(job=study, status=JobStatus.CANCELLED)
        return {"status": JobStatus.CANCELLED}
    except Exception as error:
        logger.exception("Label-source study %s failed", study.pk)
        job_finish(job=study, status=JobStatus.FAILED, error=str(error) or type(error).__name__)
        raise
    job_finish(job=study, status=JobStatus.SUCCEEDED)
    return {"status": JobStatus.SUCCEEDED, "pgr": study.results["report"]["pgr"]}
