"""The reliability job: expert reliability, gold accuracy and assisted vs blind, as one report."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.models.jobs import Job


class ReliabilityRun(Job):
    """One estimate of a project's expert reliability (annotator.services.oversight).

    `report` holds the figures the Oversight page and API show (see `reliability_report`);
    `fingerprint` names the reviews and gold labels it was computed from, so the app can tell
    when it is out of date. The item label confidences it wrote live on the items.
    """

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="reliability_runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fingerprint = models.CharField(max_length=80, blank=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "reliability estimate"
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self) -> str:
        return f"Reliability estimate {self.pk} of {self.project_id}"
