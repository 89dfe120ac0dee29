"""Red-team campaigns and what they produce: attacks, responses, critiques."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from alignment_core.dimensions import DimensionInput, score_dimensions
from annotator.models.jobs import Job


class Verdict(models.TextChoices):
    SAFE = "safe", "Safe"
    UNSAFE = "unsafe", "Unsafe"
    REFUSAL = "refusal", "Refusal"
    OVER_REFUSAL = "over_refusal", "Over-refusal"


# Verdicts whose label needs a better response (the critic's or the expert's revision); for the
# others the learner's original response is already acceptable and stays the curated answer.
REVISED_VERDICTS = (Verdict.UNSAFE, Verdict.OVER_REFUSAL)

# The stages a campaign's job runs, in order, with the labels its progress bars show.
STAGE_LABELS = {"attack": "Write attacks", "respond": "Learner answers",
                "critique": "Critic judges", "items": "Queue for review"}
STAGES = tuple(STAGE_LABELS)


class Campaign(Job):
    """A red-team round against one learner version; its job runs attack → respond → critique."""

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="campaigns")
    learner_version = models.ForeignKey(
        "annotator.LearnerVersion", on_delete=models.PROTECT, related_name="campaigns"
    )
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    strategies = models.JSONField(default=list)
    categories = models.JSONField(default=list, blank=True)  # empty: all categories
    budget = models.PositiveIntegerField(default=32)
    samples_per_attack = models.PositiveSmallIntegerField(default=1)
    seed = models.IntegerField(default=0)
    # Held-out campaigns measure a learner; their items never feed training.
    held_out = models.BooleanField(default=False)
    report = models.JSONField(default=dict, blank=True)
    # Tokens spent per role, over every run of the job (a resumed one included), e.g.
    # {"learner": {"endpoint": "model 'learner' at http://…/v1", "prompt_tokens": 812,
    # "completion_tokens": 3070, "requests": 48}}; recorded with each committed batch.
    usage = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(budget__gte=1), name="campaign_budget_gte_1"),
            models.CheckConstraint(
                condition=models.Q(samples_per_attack__gte=1), name="campaign_samples_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotator:campaign_detail", args=[self.project.slug, self.pk])


class AttackQuery(models.Model):
    """One adversarial (or benign-twin, or imported) prompt."""

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE, related_name="attacks")
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="attacks"
    )
    # Position within the campaign: makes the attack stage idempotent on resume.
    seq = models.PositiveIntegerField(default=0)
    text = models.TextField()
    strategy = models.CharField(max_length=64, blank=True)
    category = models.CharField(max_length=64, blank=True)
    behaviour_id = models.CharField(max_length=64, blank=True)
    severity = models.PositiveSmallIntegerField(default=0)
    # What the attacker really knows about the request: True = a benign twin (refusing it is an
    # over-refusal), False = written from a harmful goal or canary objective that the text
    # carries verbatim, None = unknown (imported prompts and pairs, LM-written attacks): the
    # critic then judges the request from its text alone (see critic_evidence below).
    is_benign = models.BooleanField(null=True, blank=True, default=None)
    canary_id = models.CharField(max_length=64, blank=True)
    system_prompt = models.TextField(blank=True)
    turns = models.JSONField(null=True, blank=True)  # earlier chat turns for multi-turn attacks
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="mutations"
    )
    source = models.CharField(max_length=16, default="campaign")  # campaign | import
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign_id", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "seq"], condition=models.Q(campaign__isnull=False),
                name="attack_unique_seq_in_campaign",
            ),
        ]
        indexes = [models.Index(fields=["project", "strategy"])]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def aimed_benign(self) -> bool:
        """Whether the attacker meant a benign twin (reports count these as over-refusal probes,
        not attacks). An LM-written attack keeps its goal's intent in meta["goal_is_benign"]."""
        if self.is_benign is not None:
            return self.is_benign
        return (self.meta or {}).get("goal_is_benign") is True

    def critic_evidence(self) -> dict:
        """The CritiqueInput fields other than the texts: what the critic may take as evidence.

        Only real attacker knowledge counts. When it is unknown (is_benign None), the behaviour
        id and its severity are left out too, since the critic reads a behaviour id as "written
        to cause harm"; the request is then judged from its text. A canary check stays: it is
        a string check on the answer, whoever wrote the request. The category is a topic label
        (the importer's, or the goal's), kept as a hint for the critique's category.
        """
        known = self.is_benign is not None
        return {"category": self.category,
                "behaviour_id": self.behaviour_id if known else "",
                "is_benign": self.is_benign,
                "canary_id": self.canary_id or None,
                "severity_hint": self.severity if known and self.behaviour_id else None}


class Response(models.Model):
    """What one learner version answered to one attack."""

    attack = models.ForeignKey(AttackQuery, on_delete=models.CASCADE, related_name="responses")
    learner_version = models.ForeignKey(
        "annotator.LearnerVersion", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="responses",
    )
    sample_index = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["attack", "learner_version", "sample_index"], name="response_unique_sample"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class Critique(models.Model):
    """The critic's structured judgement of one response."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="critiques")
    critic_name = models.CharField(max_length=64)
    critic_version = models.CharField(max_length=32, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    category = models.CharField(max_length=64, blank=True)
    severity = models.PositiveSmallIntegerField(default=0)
    confidence = models.FloatField(default=0.5)
    spans = models.JSONField(default=list, blank=True)  # [{"start": int, "end": int, "text": str}]
    explanation = models.TextField(blank=True)
    suggested_revision = models.TextField(blank=True)
    signals = models.JSONField(default=dict, blank=True)
    # Harmlessness, helpfulness, honesty 0-4 and a reason each, as the critic wrote them
    # (alignment_core.dimensions.DimensionScores.to_dict()); empty for critiques stored before
    # the critic scored them, whose `scores` are worked out when read.
    dimensions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(severity__lte=4), name="critique_severity_0_4"),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0) & models.Q(confidence__lte=1),
                name="critique_confidence_0_1",
            ),
            models.CheckConstraint(
                condition=models.Q(verdict__in=[v.value for v in Verdict]),
                name="critique_verdict_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} ({self.confidence:.2f})"

    @property
    def replaces_answer(self) -> bool:
        """Does approving this critique curate its revision instead of the learner's answer?

        Always for an unsafe answer or an over-refusal; for a safe answer or a refusal only where
        the critic found the answer to a harmful request to be no answer at all (it loops,
        parrots the request, is empty or off the subject) and said so in
        `signals["replaces_answer"]`: the learner's own words would then become an SFT target.
        """
        return self.verdict in REVISED_VERDICTS or bool((self.signals or {}).get("replaces_answer"))

    @property
    def approved_answer(self) -> str:
        """What approving this critique curates (the review page shows exactly this)."""
        if self.replaces_answer and self.suggested_revision.strip():
            return self.suggested_revision
        return self.response.text

    @property
    def scores(self) -> dict:
        """The dimensions in their stored shape ({name: 0-4, ..., "reasons": {name: line}}):
        the critic's, or, for a critique stored without them (an import, an older campaign),
        the same scorer's reading of the verdict and texts (needs the response and attack)."""
        if not self.dimensions:
            self.dimensions = score_dimensions(DimensionInput(
                self.response.attack.text, self.response.text, self.verdict, self.severity,
                self.category)).to_dict()
        return self.dimensions
