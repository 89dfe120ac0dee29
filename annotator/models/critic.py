"""The critic's learning record: one row per fit of a project's critic head."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CriticRetrain(models.Model):
    """One fit of a project's critic head on its experts' decisions, and how good it was.

    The rows are the points of the Agreement page's learning curve: the number of expert labels
    against the accuracy and the expected calibration error measured on held-out folds
    (cross-validation of the whole head, calibration included). The head itself lives on the
    project (Project.critic_head), which always holds the newest fit.
    """

    class Trigger(models.TextChoices):
        # Lower-case labels: pages show them inside a sentence ("... (automatic)").
        AUTO = "auto", "automatic"
        MANUAL = "manual", "retrain button or API"
        COMMAND = "command", "manage.py retrain_critic"

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="critic_retrains")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    labels = models.PositiveIntegerField(help_text="Expert decisions the head was fitted on.")
    accuracy = models.FloatField(null=True, blank=True,
                                 help_text="Four-way accuracy on held-out folds.")
    ece = models.FloatField(null=True, blank=True,
                            help_text="Expected calibration error on held-out folds.")
    calibration = models.CharField(max_length=16, blank=True,
                                   help_text="The calibrator the head chose (identity, platt, "
                                   "isotonic).")
    fingerprint = models.CharField(max_length=16, blank=True)
    # The newest Review id among the decisions this fit saw.
    trained_through = models.PositiveBigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["project", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(trigger__in=["auto", "manual", "command"]),
                                   name="critic_retrain_trigger_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project} critic on {self.labels} labels"
