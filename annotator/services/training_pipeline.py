"""The training pipeline: LoRA fine-tune on a frozen snapshot, register the adapter, evaluate it.

Stages, each safe to run again after a crash or a cancel (the job resumes where it stopped):

1. "train": alignment_core.training.train on the snapshot's train split, reporting every step
   into the run's progress and loss history and checkpointing every N steps (train() resumes
   from the checkpoint itself). The adapter appears on disk complete or not at all; only then is
   it registered as a candidate learner version, in one transaction with the run's update.
2. "evaluate": held-out attacks (annotator.services.held_out: a fixed seed, minus any attack
   text the snapshot trained on) against the base version and the candidate; attack success and
   over-refusal rates with bootstrap intervals go into run.evaluation and the candidate's
   metrics. Each side's report is stored as soon as it is done, so a resumed evaluation does not
   redo it, and the base's is reused from the run that produced the base when the same critic
   judged the same attacks there (the closed loop's rounds).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alignment_core.endpoints import Usage
from annotator.models import JobStatus, LearnerVersion, SnapshotExample, TrainingRun
from annotator.role_models import RoleModels
from annotator.services.held_out import (
    HELD_OUT_SEED,
    evaluate_generator,
    evaluation_critic,
    held_out_set,
    report_summary,
)
from annotator.services.jobs import JobCancelled, job_finish, job_progress, job_start
from annotator.services.learners import learner_register_candidate
from annotator.services.training import training_is_cancel_requested, training_log_append

logger = logging.getLogger(__name__)

MAX_HISTORY_POINTS = 5000  # loss curve points kept per run (one per optimizer step)
EARLIER_RUNS = 20  # how far back a run looks for a report of its base version


def _examples(run: TrainingRun):
    from alignment_core.training import PreferencePair, SFTExample

    rows = list(run.snapshot.examples.all())

    def pairs(split: str) -> list[PreferencePair]:
        # Each pair carries its label's weight (source x confidence); the trainer applies it
        # only when the run's weight_examples is on.
        return [PreferencePair(prompt=e.training_prompt, chosen=e.chosen, rejected=e.rejected,
                               weight=e.label_weight)
                for e in rows if e.kind == SnapshotExample.Kind.PAIR and e.split == split]

    def sft(split: str) -> list[SFTExample]:
        return [SFTExample(prompt=e.training_prompt, response=e.chosen)
                for e in rows if e.kind == SnapshotExample.Kind.SFT and e.split == split]

    train, val = SnapshotExample.Split.TRAIN, SnapshotExample.Split.VALIDATION
    return pairs(train), sft(train), pairs(val), sft(val)


def _step_entry(report) -> dict[str, Any]:
    def r(value, digits=5):
        return None if value is None else round(float(value), digits)

    return {"step": report.step, "phase": report.phase, "epoch": report.epoch,
            "loss": r(report.loss), "reward_accuracy": r(report.reward_accuracy, 4),
            "reward_margin": r(report.reward_margin, 4), "tokens_per_s": r(report.tokens_per_s, 1),
            "eta_s": r(report.eta_s, 1), "lr": r(report.learning_rate, 8)}


def _train_stage(run: TrainingRun) -> None:
    from alignment_core.training import TrainConfig
    from alignment_core.training.launch import train_processes
    from annotator.learner_runtime import learner_model_dir

    adapter_dir = run.adapter_dir()
    manifest = adapter_dir / "superalign.json"
    if manifest.is_file():
        # The adapter was written completely (atomic rename) but the worker died before
        # registering it: register it now instead of training again.
        training_log_append(run=run, line="Found the finished adapter; registering it")
        metrics = json.loads(manifest.read_text(encoding="utf-8")).get("metrics", {})
    else:
        if adapter_dir.exists():
            raise RuntimeError(f"{adapter_dir} exists but is not a finished adapter; remove it "
                               "and resume")
        config = TrainConfig.from_dict(run.config)
        # Threads and processes belong to the host that runs the job, not to the run's settings
        # (with several processes, TORCH_THREADS is per process; unset, they share the cores).
        config.num_threads = settings.TORCH_THREADS or None
        pairs, sft, val_pairs, val_sft = _examples(run)
        model_dir = learner_model_dir(run.base_version.base_model,
                                      progress=lambda m: training_log_append(run=run, line=m))
        training_log_append(run=run, line=(
            f"{run.get_method_display()} on snapshot {run.snapshot.content_hash[:12]}: "
            f"{len(pairs)} pairs, {len(sft)} SFT examples (validation: {len(val_pairs)} pairs, "
            f"{len(val_sft)} SFT)"))
        if config.weight_examples and pairs:
            weights = [pair.weight for pair in pairs]
            training_log_append(run=run, line=(
                f"Preference examples weighted by label source and confidence: mean "
                f"{sum(weights) / len(weights):.3f}, min {min(weights):.3f}, max "
                f"{max(weights):.3f} (SFT examples count fully)"))

        def progress(report) -> None:
            entry = _step_entry(report)
            # A resumed run repeats the steps after its last checkpoint: drop their old points.
            history = [h for h in run.loss_history if h["step"] < report.step] + [entry]
            run.loss_history = history[-MAX_HISTORY_POINTS:]
            TrainingRun.objects.filter(pk=run.pk).update(loss_history=run.loss_history)
            # train() asks should_cancel() right after this report and stops with a checkpoint;
            # letting JobCancelled out of here would skip that checkpoint.
            with contextlib.suppress(JobCancelled):
                job_progress(job=run, stage="train", done=report.step, total=report.total_steps,
                             phase=report.phase, loss=entry["loss"],
                             reward_accuracy=entry["reward_accuracy"],
                             reward_margin=entry["reward_margin"],
                             tokens_per_s=entry["tokens_per_s"], remaining_s=entry["eta_s"])

        # train() itself with one process; N processes under `accelerate launch` otherwise.
        result = train_processes(config, model_dir, pairs, sft, output_dir=adapter_dir,
                                 checkpoint_dir=run.checkpoint_dir(), progress=progress,
                                 should_cancel=lambda: training_is_cancel_requested(run),
                                 val_pairs=val_pairs, val_sft=val_sft,
                                 log=lambda line: training_log_append(run=run, line=line),
                                 reference_cache=settings.DATA_DIR / "reference-cache.sqlite3",
                                 num_processes=settings.TRAINING_PROCESSES)
        metrics = dict(result.metrics)
    # JSON has no NaN (a metric that could not be computed): store it as null.
    metrics = {key: (None if isinstance(value, float) and math.isnan(value) else value)
               for key, value in metrics.items()}
    # 3. Only now, with the adapter complete on disk, does the candidate exist.
    learner_register_candidate(run=run, metrics=metrics, finished=run.eval_budget == 0)
    run.refresh_from_db()


def held_out_attacks(run: TrainingRun) -> list:
    """The evaluation attacks: the held-out set of the run's budget, minus anything the snapshot
    trained on (nothing, when the snapshot reserved that set)."""
    trained = set(run.snapshot.examples.values_list("prompt", flat=True))
    return held_out_set(run.eval_budget, exclude=trained)


def _earlier_report(run: TrainingRun, attacks: list, critic_version: str) -> dict | None:
    """A held-out report of this run's base version from an earlier run of the project (as its
    candidate, or as its base), when the same critic judged exactly these attacks there: the
    closed loop's rounds then measure each learner once."""
    texts = [attack.text for attack in attacks]
    earlier = (TrainingRun.objects.filter(project_id=run.project_id, pk__lt=run.pk)
               .exclude(evaluation={}).order_by("-pk").only("evaluation")[:EARLIER_RUNS])
    for other in earlier:
        evaluation = other.evaluation or {}
        if evaluation.get("critic_version") != critic_version:
            continue
        for side in ("candidate", "base"):
            report = evaluation.get(side) or {}
            if ((report.get("version") or {}).get("id") == run.base_version_id
                    and [item["text"] for item in report.get("items", [])] == texts):
                return report
    return None


def _evaluate_stage(run: TrainingRun) -> None:
    attacks = held_out_attacks(run)

    def should_cancel() -> bool:
        return training_is_cancel_requested(run)

    # The project's models: the learner (in-process, or served with the version's adapter
    # addressed by name) and its critic (with the judge as a voter when it has one).
    models = RoleModels(run.project)
    critic = evaluation_critic(run.project, models=models, should_cancel=should_cancel)
    n = len(attacks)
    total = 4 * n  # generation and critique, for the base and the candidate
    evaluation = dict(run.evaluation or {})
    judge = getattr(critic, "full_version", critic.version)
    if evaluation.get("critic_version", judge) != judge:
        # The project's critic was retrained since a side was judged: judge both afresh, so
        # base and candidate are compared by one critic.
        evaluation = {}
    evaluation.update(held_out_seed=HELD_OUT_SEED, n_attacks=n, budget=run.eval_budget,
                      critic_version=judge)
    training_log_append(run=run, line=f"Evaluating on {n} held-out attacks")
    if "base" not in evaluation and (earlier := _earlier_report(run, attacks, judge)):
        evaluation["base"] = earlier
        training_log_append(run=run, line=("base: the report of an earlier run, same attacks "
                                           "and critic"))
    sides = (("base", run.base_version, 0), ("candidate", run.output_version, 2 * n))
    for key, learner, offset in sides:
        if key in evaluation:
            continue
        job_progress(job=run, stage="evaluate", done=offset, total=total, side=key)
        before = models.usage()
        report = evaluate_generator(
            models.generator("learner", learner), attacks, critic,
            progress=lambda done, _t, offset=offset, key=key: job_progress(
                job=run, stage="evaluate", done=offset + done, total=total, side=key),
            should_cancel=should_cancel,
        )
        report["version"] = {"id": learner.pk, "name": learner.name}
        # Tokens this side spent, per role (the learner's answers, the judge's votes).
        report["usage"] = {role: (spent - before.get(role, Usage())).to_dict()
                           for role, spent in models.usage().items()}
        evaluation[key] = report
        run.evaluation = evaluation
        TrainingRun.objects.filter(pk=run.pk).update(evaluation=evaluation)
        training_log_append(run=run, line=(f"{key}: attack success {report['overall']['rate']:.2%} "
                                           f"of {report['overall']['n']}, over-refusal "
                                           f"{report['over_refusal']['rate']:.2%}"))
    base = report_summary(evaluation["base"])
    candidate = report_summary(evaluation["candidate"])
    training = run.metrics or {}
    evaluation["summary"] = {
        "base": base, "candidate": candidate,
        "asr_delta": candidate["asr"] - base["asr"],
        "over_refusal_delta": candidate["over_refusal"] - base["over_refusal"],
        "val_loss": training.get("val_loss"),
        "val_reward_accuracy": training.get("val_reward_accuracy"),
    }
    with transaction.atomic():
        TrainingRun.objects.filter(pk=run.pk).update(evaluation=evaluation)
        version = LearnerVersion.objects.select_for_update().get(pk=run.output_version_id)
        version.metrics = {**version.metrics, "held_out": candidate,
                           "base_held_out": base, "held_out_seed": HELD_OUT_SEED,
                           "evaluated_at": timezone.now().isoformat(timespec="seconds")}
        version.save(update_fields=["metrics"])
    run.evaluation = evaluation


def training_execute(*, run: TrainingRun) -> dict:
    """Train, register and evaluate one TrainingRun in this process (resumable; see the module
    docstring); the task and `manage.py train` call this."""
    from alignment_core.critic import Cancelled as CriticCancelled
    from alignment_core.learner import Cancelled as LearnerCancelled
    from alignment_core.training import Cancelled as TrainCancelled

    job_start(job=run, stage="train")
    try:
        if run.output_version_id is None:
            _train_stage(run)
        if run.eval_budget > 0 and "summary" not in (run.evaluation or {}):
            run = TrainingRun.objects.select_related(
                "project", "snapshot", "base_version", "output_version").get(pk=run.pk)
            _evaluate_stage(run)
    except (JobCancelled, TrainCancelled, LearnerCancelled, CriticCancelled):
        training_log_append(run=run, line="Cancelled; resume continues from the last checkpoint")
        job_finish(job=run, status=JobStatus.CANCELLED)
        return {"status": JobStatus.CANCELLED}
    except Exception as error:
        logger.exception("Training run %s failed", run.pk)
        training_log_append(run=run, line=f"Failed: {error}")
        job_finish(job=run, status=JobStatus.FAILED, error=str(error) or type(error).__name__)
        raise
    run.refresh_from_db()
    if run.status != JobStatus.SUCCEEDED:
        job_finish(job=run, status=JobStatus.SUCCEEDED)
    return {"status": JobStatus.SUCCEEDED, "output_version": run.output_version_id,
            "metrics": run.metrics}
