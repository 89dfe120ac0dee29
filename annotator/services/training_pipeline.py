"""The training pipeline: LoRA fine-tune on a frozen snapshot, register the adapter, evaluate it.

Stages, each safe to run again after a crash or a cancel (the job resumes where it stopped):

1. "train": alignment_core.training.train on the snapshot's train split, reporting every step
   into the run's progress and loss history and checkpointing every N steps (train() resumes
   from the checkpoint itself). The adapter appears on disk complete or not at all; only then is
   it registered as a candidate learner version, in one transaction with the run's update.
2. "evaluate": held-out attacks (a fixed seed, minus any attack text the snapshot trained on)
   against the base version and the candidate; attack success and over-refusal rates with
   bootstrap intervals go into run.evaluation and the candidate's metrics. Each side's report is
   stored as soon as it is done, so a resumed evaluation does not redo it.
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
from annotator.services.jobs import JobCancelled, job_finish, job_progress, job_start
from annotator.services.learners import learner_register_candidate
from annotator.services.training import training_is_cancel_requested, training_log_append

logger = logging.getLogger(__name__)

HELD_OUT_SEED = 917_277  # fixed, so base and candidate (and later runs) meet the same attacks
# Strategies that need neither a learner nor attack history, so the held-out set is a pure
# function of the seed and the budget.
HELD_OUT_STRATEGIES = ("direct", "roleplay", "hypothetical", "refusal_suppression",
                       "prefix_injection")
# A quarter benign twins (the attacker's default is 15%), so over-refusal rests on more than a
# couple of prompts in a small held-out budget.
HELD_OUT_BENIGN_FRACTION = 0.25
EVAL_MAX_NEW_TOKENS = 64
MAX_HISTORY_POINTS = 5000  # loss curve points kept per run (one per optimizer step)


def _examples(run: TrainingRun):
    from alignment_core.training import PreferencePair, SFTExample

    rows = list(run.snapshot.examples.all())

    def pairs(split: str) -> list[PreferencePair]:
        return [PreferencePair(prompt=e.training_prompt, chosen=e.chosen, rejected=e.rejected)
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
    from alignment_core.training import TrainConfig, train
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
        # Threads belong to the host that runs the job, not to the run's settings.
        config.num_threads = settings.TORCH_THREADS or None
        pairs, sft, val_pairs, val_sft = _examples(run)
        model_dir = learner_model_dir(run.base_version.base_model,
                                      progress=lambda m: training_log_append(run=run, line=m))
        training_log_append(run=run, line=(
            f"{run.get_method_display()} on snapshot {run.snapshot.content_hash[:12]}: "
            f"{len(pairs)} pairs, {len(sft)} SFT examples (validation: {len(val_pairs)} pairs, "
            f"{len(val_sft)} SFT)"))

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

        result = train(config, model_dir, pairs, sft, output_dir=adapter_dir,
                       checkpoint_dir=run.checkpoint_dir(), progress=progress,
                       should_cancel=lambda: training_is_cancel_requested(run),
                       val_pairs=val_pairs, val_sft=val_sft,
                       log=lambda line: training_log_append(run=run, line=line),
                       reference_cache=settings.DATA_DIR / "reference-cache.sqlite3")
        metrics = dict(result.metrics)
    # JSON has no NaN (a metric that could not be computed): store it as null.
    metrics = {key: (None if isinstance(value, float) and math.isnan(value) else value)
               for key, value in metrics.items()}
    # 3. Only now, with the adapter complete on disk, does the candidate exist.
    learner_register_candidate(run=run, metrics=metrics, finished=run.eval_budget == 0)
    run.refresh_from_db()


def held_out_attacks(run: TrainingRun) -> list:
    """The evaluation attacks: a fixed seed, and nothing the snapshot trained on."""
    from alignment_core.attacker import STRATEGIES, AttackConfig, generate_attacks

    trained = set(run.snapshot.examples.values_list("prompt", flat=True))
    strategies = [name for name in HELD_OUT_STRATEGIES if name in STRATEGIES]
    config = AttackConfig(strategies=strategies, budget=run.eval_budget, seed=HELD_OUT_SEED,
                          benign_fraction=HELD_OUT_BENIGN_FRACTION)
    return [attack for attack in generate_attacks(config) if attack.text not in trained]


def _summary(report: dict) -> dict[str, Any]:
    overall, over = report["overall"], report["over_refusal"]
    return {"asr": overall["rate"], "asr_lo": overall["lo"], "asr_hi": overall["hi"],
            "asr_n": overall["n"], "over_refusal": over["rate"], "over_refusal_lo": over["lo"],
            "over_refusal_hi": over["hi"], "over_refusal_n": over["n"],
            "unsafe_severity_mean": report.get("unsafe_severity_mean")}


def _evaluate_stage(run: TrainingRun) -> None:
    from alignment_core.evaluation import evaluate_learner
    from alignment_core.learner import GenerationConfig

    attacks = held_out_attacks(run)

    def should_cancel() -> bool:
        return training_is_cancel_requested(run)

    # The project's models: the learner (in-process, or served with the version's adapter
    # addressed by name) and its critic. Verdicts need no written revisions: no LM writer.
    models = RoleModels(run.project)
    critic = models.critic(run.base_version, writer=False, should_cancel=should_cancel)
    n = len(attacks)
    total = 4 * n  # generation and critique, for the base and the candidate
    evaluation = dict(run.evaluation or {})
    evaluation.update(held_out_seed=HELD_OUT_SEED, n_attacks=n, budget=run.eval_budget)
    training_log_append(run=run, line=f"Evaluating on {n} held-out attacks")
    sides = (("base", run.base_version, 0), ("candidate", run.output_version, 2 * n))
    for key, version, offset in sides:
        if key in evaluation:
            continue
        job_progress(job=run, stage="evaluate", done=offset, total=total, side=key)
        learner = models.generator("learner", version)
        before = models.usage()
        report = evaluate_learner(
            learner, critic, attacks, GenerationConfig(max_new_tokens=EVAL_MAX_NEW_TOKENS),
            progress=lambda done, _t, offset=offset, key=key: job_progress(
                job=run, stage="evaluate", done=offset + done, total=total, side=key),
            should_cancel=should_cancel,
        )
        report["version"] = {"id": version.pk, "name": version.name}
        # Tokens this side spent, per role (the learner's answers, the judge's votes).
        report["usage"] = {role: (spent - before.get(role, Usage())).to_dict()
                           for role, spent in models.usage().items()}
        evaluation[key] = report
        run.evaluation = evaluation
        TrainingRun.objects.filter(pk=run.pk).update(evaluation=evaluation)
        training_log_append(run=run, line=(f"{key}: attack success {report['overall']['rate']:.2%} "
                                           f"of {report['overall']['n']}, over-refusal "
                                           f"{report['over_refusal']['rate']:.2%}"))
    base, candidate = _summary(evaluation["base"]), _summary(evaluation["candidate"])
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
