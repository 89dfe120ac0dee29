"""Projects and who may do what in them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    EXPERT = "expert", "Expert"
    VIEWER = "viewer", "Viewer"


# Higher means more rights; access checks compare ranks (see annotator/access.py).
ROLE_RANK = {Role.VIEWER: 0, Role.EXPERT: 1, Role.ADMIN: 2}


def new_oversight_seed() -> int:
    return secrets.randbelow(2**31)


class Project(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown; shown to experts, sanitised.")
    reviews_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="How many experts review each item independently.",
    )
    # Auto-accept is earned, not typed in: the threshold is computed from the audited items
    # (annotator/selectors/critic.py) so that the audited precision above it meets this target
    # with 95% confidence (one-sided Clopper-Pearson lower bound).
    target_precision = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)],
        help_text="Auto-accept the critic's verdicts only where audits show, with 95% confidence, "
        "that at least this share of them is right (0.5 to 0.999).",
    )
    audit_rate = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of new items sent to experts as a random audit once a threshold exists "
        "(until then every item is audited: experts see them all anyway).",
    )
    blind_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of items each expert reviews blind: the request and the answer without "
        "the critic's verdict, explanation and revision (0.2 = one item in five).",
    )
    gold_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of each expert's queue that serves gold items unannounced, to score the "
        "expert (0.05 = one item in twenty; needs items marked gold).",
    )
    # Seeds the blind and gold choices (alignment_core.oversight.sampler); random per project so
    # nobody can work out from the code which of their items are blind or gold.
    oversight_seed = models.PositiveIntegerField(default=new_oversight_seed, editable=False)
    critic_head = models.JSONField(
        null=True, blank=True, help_text="Learned critic head retrained from expert decisions."
    )
    # The debounce record of automatic retraining (annotator/services/critic_learning.py): when
    # the scheduled retrain check runs (empty: none scheduled), and the newest Review id the
    # stored head has learnt from, so "new decisions" is a count of later reviews.
    critic_retrain_due_at = models.DateTimeField(null=True, blank=True)
    critic_trained_through = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reviews_per_item__gte=1), name="project_reviews_per_item_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(audit_rate__gte=0) & models.Q(audit_rate__lte=1),
                name="project_audit_rate_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(blind_share__gte=0) & models.Q(blind_share__lte=1),
                name="project_blind_share_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(gold_share__gte=0) & models.Q(gold_share__lte=1),
                name="project_gold_share_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(target_precision__gte=0.5)
                & models.Q(target_precision__lte=0.999),
                name="project_target_precision_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotator:project_detail", args=[self.slug])


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EXPERT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]
