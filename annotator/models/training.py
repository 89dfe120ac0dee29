"""LoRA fine-tunes of the learner, run by the background worker."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from annotator.models.jobs import Job


class TrainingRun(Job):
    class Method(models.TextChoices):
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO"
        SFT_DPO = "sft_dpo", "SFT then DPO"

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="training_runs")
    snapshot = models.ForeignKey(
        "annotator.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs"
    )
    base_version = models.ForeignKey(
        "annotator.LearnerVersion", on_delete=models.PROTECT, related_name="training_runs"
    )
    output_version = models.OneToOneField(
        "annotator.LearnerVersion", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="produced_by",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.DPO)
    # LoRA and optimiser settings, as given to alignment_core.training.TrainConfig.
    config = models.JSONField(default=dict)
    loss_history = models.JSONField(default=list, blank=True)  # one dict per logged step
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    evaluation = models.JSONField(default=dict, blank=True)  # base vs candidate on held-out attacks
    # How many held-out attacks the evaluation stage generates (0 skips evaluation).
    eval_budget = models.PositiveIntegerField(default=16)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_method_display()} run {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("annotator:training_detail", args=[self.project.slug, self.pk])

    def checkpoint_dir(self):
        return settings.DATA_DIR / "checkpoints" / f"run-{self.pk}"

    @property
    def adapter_relpath(self) -> str:
        """Where the adapter goes, relative to DATA_DIR (LearnerVersion.adapter_path)."""
        return f"adapters/{self.project.slug}/run-{self.pk}"

    def adapter_dir(self):
        return settings.DATA_DIR / self.adapter_relpath
