"""Dataset exports in the formats trainers use."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotator.models.jobs import Job


class Export(Job):
    class Format(models.TextChoices):
        TRL_PREFERENCE = "trl_preference", "TRL preference (prompt/chosen/rejected)"
        TRL_CONVERSATIONAL = "trl_conversational", "TRL preference, conversational"
        SFT_CHAT = "sft_chat", "SFT chat (messages)"
        KTO = "kto", "KTO (prompt/completion/label)"
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=24, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True)
    include_provenance = models.BooleanField(default=True)
    snapshot = models.ForeignKey(
        "annotator.DatasetSnapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_path = models.CharField(max_length=500, blank=True)  # relative to DATA_DIR
    rows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.format} export {self.pk}"

    def file(self):
        return settings.DATA_DIR / self.file_path if self.file_path else None
