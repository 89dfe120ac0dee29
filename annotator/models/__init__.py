"""All models of the annotator app, one module per domain; import them from here."""

from annotator.models.campaigns import (
    REVISED_VERDICTS,
    STAGE_LABELS,
    STAGES,
    AttackQuery,
    Campaign,
    Critique,
    Response,
    Verdict,
)
from annotator.models.critic import CriticRetrain
from annotator.models.datasets import DatasetSnapshot, SnapshotExample
from annotator.models.endpoints import ModelEndpoint
from annotator.models.exports import Export
from annotator.models.jobs import Job, JobStatus
from annotator.models.learners import LearnerVersion
from annotator.models.oversight import ReliabilityRun
from annotator.models.projects import Membership, Project, Role
from annotator.models.reviews import (
    ASSISTED,
    CURATED_STATES,
    DECISIONS,
    UNDOABLE,
    ItemState,
    Review,
    ReviewAction,
    ReviewAssignment,
    ReviewItem,
    ServedAs,
)
from annotator.models.risks import (
    RISK_STAGE_LABELS,
    RISK_STAGES,
    DiscoveredRisk,
    RiskCategory,
    RiskDecision,
    RiskDiscovery,
)
from annotator.models.studies import LabelStudy
from annotator.models.tokens import ApiToken
from annotator.models.training import TrainingRun

__all__ = [
    "ASSISTED", "CURATED_STATES", "DECISIONS", "REVISED_VERDICTS", "RISK_STAGES", "RISK_STAGE_LABELS",
    "STAGES", "STAGE_LABELS", "UNDOABLE", "ApiToken", "AttackQuery", "Campaign", "CriticRetrain",
    "Critique", "DatasetSnapshot", "DiscoveredRisk", "Export", "ItemState", "Job", "JobStatus",
    "LabelStudy", "LearnerVersion", "Membership", "ModelEndpoint", "Project", "ReliabilityRun",
    "Response", "Review", "ReviewAction", "ReviewAssignment", "ReviewItem", "RiskCategory",
    "RiskDecision", "RiskDiscovery", "Role", "ServedAs", "SnapshotExample", "TrainingRun", "Verdict",
]
