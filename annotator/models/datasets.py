"""Frozen, hashed sets of curated training examples."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from alignment_core.training.label_sources import LABEL_SOURCES, SOURCE_LABELS, example_weight


class DatasetSnapshot(models.Model):
    """A frozen copy of a project's curated labels at one moment, identified by a content hash.

    The examples are copied (not referenced), so later reviews never change what a training run
    was trained on; the hash covers every example's kind, split and text.
    """

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filters = models.JSONField(default=dict, blank=True)
    validation_fraction = models.FloatField(default=0.1)
    seed = models.IntegerField(default=0)
    content_hash = models.CharField(max_length=64, db_index=True)
    pair_count = models.PositiveIntegerField(default=0)
    sft_count = models.PositiveIntegerField(default=0)
    train_count = models.PositiveIntegerField(default=0)
    validation_count = models.PositiveIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)  # curated items that matched the filters
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_hash[:10]})"

    def get_absolute_url(self) -> str:
        return reverse("annotator:snapshot_detail", args=[self.project.slug, self.pk])

    @property
    def train_pair_count(self) -> int:
        return self.examples.filter(kind=SnapshotExample.Kind.PAIR,
                                    split=SnapshotExample.Split.TRAIN).count()

    @property
    def train_sft_count(self) -> int:
        return self.examples.filter(kind=SnapshotExample.Kind.SFT,
                                    split=SnapshotExample.Split.TRAIN).count()

    def source_counts(self) -> dict[str, int]:
        """Curated items per label source (every item has exactly one SFT example); read from
        the annotations of selectors.training.with_source_counts when a list has them."""
        if all(hasattr(self, f"items_{source}") for source in LABEL_SOURCES):
            return {source: getattr(self, f"items_{source}") for source in LABEL_SOURCES}
        rows = dict(self.examples.filter(kind=SnapshotExample.Kind.SFT)
                    .values_list("label_source").annotate(n=models.Count("id")))
        return {source: rows.get(source, 0) for source in LABEL_SOURCES}


class SnapshotExample(models.Model):
    class Kind(models.TextChoices):
        PAIR = "pair", "Preference pair"
        SFT = "sft", "SFT example"

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALIDATION = "validation", "Validation"

    snapshot = models.ForeignKey(DatasetSnapshot, on_delete=models.CASCADE, related_name="examples")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.TRAIN)
    prompt = models.TextField()  # the attack text (the last user turn)
    # The full chat when the attack had a system prompt or earlier turns; null for one user turn.
    prompt_messages = models.JSONField(null=True, blank=True)
    chosen = models.TextField()  # the curated answer (the SFT target for SFT examples)
    rejected = models.TextField(blank=True)  # the learner's original answer (pairs only)
    review_item = models.ForeignKey(
        "annotator.ReviewItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.CharField(max_length=64, blank=True)
    strategy = models.CharField(max_length=64, blank=True)
    # Where the label came from (expert consensus, adjudication, one expert, or the critic alone)
    # and how sure that source was: the critic's calibrated confidence for a critic-only label,
    # the experts' posterior where one was estimated, None for a human label taken as sure.
    # Both are part of the content hash; training turns them into the example's weight
    # (alignment_core.training.label_sources.example_weight) when weight_examples is on.
    label_source = models.CharField(max_length=20, default="single_expert",
                                    choices=[(s, SOURCE_LABELS[s]) for s in LABEL_SOURCES])
    source_confidence = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["snapshot", "kind", "split"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk} ({self.split})"

    @property
    def label_weight(self) -> float:
        """How much this example counts in training when weight_examples is on."""
        return example_weight(self.label_source, self.source_confidence)

    @property
    def training_prompt(self) -> str | list[dict]:
        """The prompt in the shape alignment_core.training takes: a string or chat messages."""
        return self.prompt_messages or self.prompt
