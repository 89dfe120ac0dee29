"""Risk discovery: runs that cluster a project's successful attacks, and what admins decided.

A `RiskDiscovery` is a background job over the project's campaigns and imports; each cluster it
found is a `DiscoveredRisk` that stores alignment_core's `RiskCluster.to_dict()` as it is. Cluster
ids change whenever membership changes, so an admin's decision is a `RiskDecision` of its own,
which later runs carry over to the cluster that continues the decided one
(`alignment_core.risks.carry_over`). Adopting a cluster makes a `RiskCategory`: a new category
whose seed behaviours the next campaigns attack with.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from annotator.models.jobs import Job

# The stages a discovery job reports, in order, with the labels its progress bars show. The
# middle three are alignment_core.risks.discover's own progress stages.
RISK_STAGE_LABELS = {"collect": "Read successful attacks", "prepare": "Cut frames and encodings",
                     "embed": "Embed requests and answers", "cluster": "Cluster and describe",
                     "save": "Save clusters"}
RISK_STAGES = tuple(RISK_STAGE_LABELS)


class RiskDiscovery(Job):
    """One discovery run over a project's successful attacks (all its campaigns and imports
    except held-out ones), after a campaign or on an admin's demand."""

    class Trigger(models.TextChoices):
        CAMPAIGN = "campaign", "After a campaign"
        MANUAL = "manual", "On demand"

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="risk_discoveries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    after_campaign = models.ForeignKey("annotator.Campaign", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    # The campaigns and imports whose judged attacks the run read.
    campaigns = models.ManyToManyField("annotator.Campaign", blank=True, related_name="+")
    considered = models.PositiveIntegerField(default=0)  # successful attacks clustered
    noise = models.PositiveIntegerField(default=0)  # of those, in no cluster
    # The 2-D map: one {"id", "x", "y", "cluster_id"} per clustered attack (alignment_core's
    # MapPoint; "id" is the Response's pk).
    points = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict, blank=True)  # the DiscoveryConfig it ran with

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"])]
        verbose_name = "risk discovery run"
        constraints = [
            models.CheckConstraint(condition=models.Q(trigger__in=["campaign", "manual"]),
                                   name="riskdiscovery_trigger_valid"),
        ]

    def __str__(self) -> str:
        return f"Risk discovery {self.pk}"


class RiskCategory(models.Model):
    """A category adopted from a discovered cluster: the attacker's seeds for it."""

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="risk_categories")
    name = models.CharField(max_length=40)  # the slug attacks are filed under, e.g. "ivory_trade"
    title = models.CharField(max_length=120)  # the cluster's name when it was adopted
    keywords = models.JSONField(default=list, blank=True)
    # alignment_core.attacker.Behaviour dicts (id, category, goal, severity, benign_twin); the
    # goals come from attacks and are model-influenced text: shown escaped like any output.
    behaviours = models.JSONField(default=list)
    source_ids = models.JSONField(default=list, blank=True)  # the Response each seed came from
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "risk categories"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="riskcategory_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class RiskDecision(models.Model):
    """An admin adopted or dismissed a cluster. Later runs point their continuing cluster at the
    same decision, so it is made once and remembered."""

    class Action(models.TextChoices):
        ADOPT = "adopt", "Adopted"
        DISMISS = "dismiss", "Dismissed"

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="risk_decisions")
    action = models.CharField(max_length=16, choices=Action.choices)
    cluster_key = models.CharField(max_length=40)  # the cluster's id when it was decided
    # RESTRICT: an adopted category cannot be deleted while its decision stands, but deleting
    # the project takes both.
    category = models.OneToOneField(RiskCategory, null=True, blank=True,
                                    on_delete=models.RESTRICT, related_name="decision")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(action__in=["adopt", "dismiss"]),
                                   name="riskdecision_action_valid"),
            # An adoption always names its category; a dismissal never does.
            models.CheckConstraint(
                condition=(models.Q(action="adopt", category__isnull=False)
                           | models.Q(action="dismiss", category__isnull=True)),
                name="riskdecision_category_iff_adopted"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.cluster_key}"


class DiscoveredRisk(models.Model):
    """One cluster found by one run, stored as alignment_core returned it."""

    discovery = models.ForeignKey(RiskDiscovery, on_delete=models.CASCADE, related_name="risks")
    key = models.CharField(max_length=40)  # RiskCluster.id: the same members, the same key
    rank = models.PositiveIntegerField()  # 0 = the highest score in its run
    score = models.FloatField()  # novelty x weight x severity / 4
    data = models.JSONField()  # RiskCluster.to_dict()
    decision = models.ForeignKey(RiskDecision, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="clusters")

    class Meta:
        ordering = ["discovery", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["discovery", "key"], name="discoveredrisk_unique_key"),
            models.UniqueConstraint(fields=["discovery", "rank"],
                                    name="discoveredrisk_unique_rank"),
        ]

    def __str__(self) -> str:
        return str(self.data.get("name") or self.key)

    def cluster(self):
        """The stored cluster as alignment_core's RiskCluster."""
        from alignment_core.risks import RiskCluster

        return RiskCluster.from_dict(self.data)
