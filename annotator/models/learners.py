"""Versions of the learner: the base model and the LoRA adapters trained on top of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class LearnerVersion(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CANDIDATE = "candidate", "Candidate"
        RETIRED = "retired", "Retired"

    project = models.ForeignKey(
        "annotator.Project", on_delete=models.CASCADE, related_name="learner_versions"
    )
    name = models.CharField(max_length=120)
    # The LEARNER_MODEL value the version was built on: "bundled" or a local model directory.
    base_model = models.CharField(max_length=500, default="bundled")
    # A LoRA adapter directory relative to DATA_DIR; empty for the base model itself.
    adapter_path = models.CharField(max_length=500, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    metrics = models.JSONField(default=dict, blank=True)
    # The version that was active before this one was promoted: the target of a roll back.
    previous_active = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Exactly one learner answers a project's campaigns at a time.
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(status="active"),
                name="learner_one_active_per_project",
            ),
            models.UniqueConstraint(fields=["project", "name"], name="learner_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_base(self) -> bool:
        return not self.adapter_path

    def adapter_dir(self):
        """The adapter's absolute directory, or None for a base model."""
        return settings.DATA_DIR / self.adapter_path if self.adapter_path else None
