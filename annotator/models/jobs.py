"""The shared shape of every long background job (campaigns, training runs, exports)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """A job row the browser can watch: status, per-stage progress, heartbeat, cancel flag.

    `progress` is a plain dict keyed by stage, e.g. {"respond": {"done": 3, "total": 16}}.
    The worker bumps `heartbeat_at` while it works; a RUNNING job whose heartbeat went stale is
    marked failed by `jobs_recover_stale` and can be resumed, since every job checkpoints.
    """

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=32, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return not self.is_active

    @property
    def can_resume(self) -> bool:
        # Every job checkpoints, so a cancelled one can continue as well as a failed one.
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED)
