"""Writes for label-source studies: their settings, the study items of a snapshot, the launch.

A study (annotator.models.LabelStudy) asks how much of the experts' value the critic's labels
recover. Its items are the expert-labelled items of one snapshot's train split (expert
consensus, adjudicated or single expert: items the critic alone labelled have no expert label
to compare with). Each item has two labels over the same prompt and the learner's original
answer:

- the experts': the snapshot's curated answer (what they approved, corrected or adjudicated);
- the critic's: what auto-accept would have curated from its critique (its suggested revision
  where it judged the answer unsafe or an over-refusal, else the original answer).

Each label carries its weight (the expert's by its source, the critic's as a critic-alone
label with the critique's confidence), which the candidates use when weight_examples is on.

The job (annotator.services.label_study_runner) trains one candidate per label set and measures
them; the settings are the training run's declared settings plus the study's own (below), so the
form, the API and `manage.py label_study` all derive from one declaration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from alignment_core.label_study import StudyItem, build_arms
from alignment_core.training import PreferencePair, TrainConfig
from alignment_core.training.label_sources import example_weight
from alignment_core.training.settings import Setting, setting, settings_of
from annotator.models import (
    DatasetSnapshot,
    LabelStudy,
    LearnerVersion,
    Project,
    ReviewAction,
    SnapshotExample,
)
from annotator.services.jobs import job_enqueue
from annotator.services.training import MAX_EVAL_BUDGET, declared_config_build

MIN_ITEMS = 2  # below this the mix is one of the other two arms


@dataclass
class StudyOptions:
    """What a study adds to a training run's settings."""

    mix_share: float = setting(
        0.5, label="Expert share of the mix", minimum=0, maximum=1, above=True, below=True,
        help="share of the items whose label the mixed candidate takes from the experts (the "
        "rest from the critic)")
    mix_seed: int = setting(0, help="seed of the draw of the items the mix takes from the experts")
    # Larger than a training run's default: PGR divides by the expert candidate's gain, which
    # a handful of attacks cannot measure.
    eval_budget: int = setting(128, label="Held-out attacks", minimum=1, maximum=MAX_EVAL_BUDGET,
                               help="held-out attacks the base model and every candidate answer")


STUDY_SETTINGS: tuple[Setting, ...] = (*settings_of(StudyOptions),
                                       *settings_of(TrainConfig, scope="run"))
StudySettings = dataclasses.make_dataclass(
    "StudySettings",
    [(s.name, Any, dataclasses.field(default=s.default)) for s in STUDY_SETTINGS],
)


def _critic_pair(prompt, critique) -> PreferencePair:
    """The critic's label of the item: what auto-accept would have curated, weighted as a
    critic-alone label with the critique's confidence (used when weight_examples is on)."""
    original = critique.response.text.strip()
    chosen = critique.approved_answer.strip()
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=original,
                          weight=example_weight("critic", critique.confidence))


def study_items(snapshot: DatasetSnapshot) -> list[StudyItem]:
    """The expert-labelled items of the snapshot's train split, each with both labels and the
    expert minutes its reviews took (every review of the item but undos, skips included: the
    time was spent)."""
    examples = (snapshot.examples.filter(kind=SnapshotExample.Kind.SFT,
                                         split=SnapshotExample.Split.TRAIN,
                                         review_item__isnull=False)
                .exclude(label_source="critic")
                .select_related("review_item__critique__response")
                .prefetch_related("review_item__reviews")
                .order_by("id"))
    items = []
    for example in examples:
        item = example.review_item
        prompt = example.training_prompt
        seconds = sum(review.seconds_spent for review in item.reviews.all()
                      if review.action != ReviewAction.UNDO)
        items.append(StudyItem(
            key=str(item.pk),
            expert=PreferencePair(prompt=prompt, chosen=example.chosen,
                                  rejected=item.critique.response.text.strip(),
                                  weight=example.label_weight),
            critic=_critic_pair(prompt, item.critique),
            expert_minutes=seconds / 60.0))
    return items


def _check_arms(items: list[StudyItem], config: TrainConfig, mix_share: float, seed: int) -> None:
    """Refuse a study whose DPO phase would have nothing to learn from in some arm."""
    if "dpo" not in config.phases():
        return
    for arm in build_arms(items, mix_shares=(mix_share,), seed=seed):
        if not any(pair.chosen != pair.rejected for pair in arm.pairs):
            who = {"critic": "The critic's labels", "expert": "The experts' labels"}.get(
                arm.name, "The mixed labels")
            raise ValidationError({"method": (
                f"{who} give no preference pair (every chosen answer is the learner's own), so "
                "DPO has nothing to learn there; choose SFT or a snapshot with more items.")})


@transaction.atomic
def label_study_launch(*, project: Project, snapshot: DatasetSnapshot, settings: Any,
                       created_by=None, enqueue: bool = True) -> LabelStudy:
    """Create a queued study on the project's active learner and enqueue it for the worker.

    `settings` is a StudySettings; `enqueue=False` leaves the study for the caller to run
    in-process (`manage.py label_study`).
    """
    if snapshot.project_id != project.pk:
        raise ValidationError({"snapshot": "That snapshot belongs to another project."})
    values = dataclasses.asdict(settings)
    config = declared_config_build(STUDY_SETTINGS, values, meta={
        "snapshot_id": snapshot.pk, "snapshot_hash": snapshot.content_hash,
        "project": project.slug, "label_study": True})
    items = study_items(snapshot)
    if len(items) < MIN_ITEMS:
        raise ValidationError({"snapshot": (
            f"The snapshot's train split has {len(items)} expert-labelled item"
            f"{'' if len(items) == 1 else 's'}; a study needs at least {MIN_ITEMS} (items the "
            "critic alone labelled have no expert label to compare with).")})
    _check_arms(items, config, values["mix_share"], values["mix_seed"])
    base = LearnerVersion.objects.filter(project=project, status=LearnerVersion.Status.ACTIVE).first()
    if base is None:
        raise ValidationError("The project has no active learner version to start from.")
    study = LabelStudy(project=project, snapshot=snapshot, base_version=base, created_by=created_by,
                       name=f"Labels of {snapshot.name}"[:120], mix_share=values["mix_share"],
                       seed=values["mix_seed"], config=config.to_dict(),
                       eval_budget=values["eval_budget"], results={"items": len(items)})
    study.full_clean()
    study.save()
    if enqueue:
        job_enqueue(job=study)
    return study
