"""All models of the annotator app, one module per domain; import them from here."""

from annotator.models.jobs import Job, JobStatus
from annotator.models.projects import Membership, Project, Role
from annotator.models.learners import LearnerVersion
from annotator.models.campaigns import AttackQuery, Campaign, Critique, Response, Verdict
from annotator.models.reviews import Review, ReviewAction, ReviewAssignment, ReviewItem, ItemState
from annotator.models.datasets import DatasetSnapshot, SnapshotExample
from annotator.models.training import TrainingRun
from annotator.models.exports import Export
from annotator.models.tokens import ApiToken

__all__ = [
    "ApiToken", "AttackQuery", "Campaign", "Critique", "DatasetSnapshot", "Export", "ItemState", "Job",
    "JobStatus", "LearnerVersion", "Membership", "Project", "Response", "Review", "ReviewAction",
    "ReviewAssignment", "ReviewItem", "Role", "SnapshotExample", "TrainingRun", "Verdict",
]
