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
from annotator.models.datasets import DatasetSnapshot, SnapshotExample
from annotator.models.endpoints import ModelEndpoint
from annotator.models.exports import Export
from annotator.models.jobs import Job, JobStatus
from annotator.models.learners import LearnerVersion
from annotator.models.projects import Membership, Project, Role
from annotator.models.reviews import (
    CURATED_STATES,
    DECISIONS,
    UNDOABLE,
    ItemState,
    Review,
    ReviewAction,
    ReviewAssignment,
    ReviewItem,
)
from annotator.models.tokens import ApiToken
from annotator.models.training import TrainingRun

__all__ = [
    "CURATED_STATES", "DECISIONS", "REVISED_VERDICTS", "STAGES", "STAGE_LABELS", "UNDOABLE",
    "ApiToken", "AttackQuery", "Campaign", "Critique", "DatasetSnapshot", "Export", "ItemState", "Job",
    "JobStatus", "LearnerVersion", "Membership", "ModelEndpoint", "Project", "Response", "Review", "ReviewAction",
    "ReviewAssignment", "ReviewItem", "Role", "SnapshotExample", "TrainingRun", "Verdict",
]
