"""Label-source studies: candidates trained on critic, expert and mixed labels of one split."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from annotator.models.jobs import Job


class LabelStudy(Job):
    """How much of the experts' value do the critic's labels recover (weak-to-strong)?

    On the expert-labelled items of one snapshot's train split, the job trains a candidate from
    the critic's labels only, one from the experts' only and one from a mix with `mix_share` of
    expert labels, measures the base model and all three on the same held-out attacks, and
    reports attack success, over-refusal, the expert minutes behind each candidate and the
    performance gap recovered (alignment_core.label_study). `results` holds every finished
    piece, so a resumed study continues where it stopped.
    """

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="label_studies")
    snapshot = models.ForeignKey("annotator.DatasetSnapshot", on_delete=models.PROTECT,
                                 related_name="label_studies")
    # The active learner at launch; the candidates start from its base model.
    base_version = models.ForeignKey("annotator.LearnerVersion", on_delete=models.PROTECT,
                                     related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=120)
    mix_share = models.FloatField(default=0.5)  # expert share of the mixed candidate's labels
    seed = models.IntegerField(default=0)  # draws which items the mix takes from the experts
    config = models.JSONField(default=dict)  # alignment_core.training.TrainConfig, as a dict
    eval_budget = models.PositiveIntegerField(default=128)
    # {"items": n, "base": summary, "arms": {name: {...}}, "report": {...}} (see the service)
    results = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "label-source study"
        verbose_name_plural = "label-source studies"
        constraints = [
            models.CheckConstraint(condition=models.Q(mix_share__gt=0) & models.Q(mix_share__lt=1),
                                   name="labelstudy_mix_share_open_0_1"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotator:study_detail", args=[self.project.slug, self.pk])

    def arm_dir(self, arm: str):
        """Where one candidate's adapter goes (written atomically by the trainer)."""
        return settings.DATA_DIR / "studies" / self.project.slug / f"study-{self.pk}" / arm

    def checkpoint_dir(self, arm: str):
        return settings.DATA_DIR / "checkpoints" / f"study-{self.pk}-{arm}"
