"""Writes for projects, members and learner versions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from annotator.models import LearnerVersion, Membership, Project, Role


@transaction.atomic
def project_create(*, name: str, owner=None, slug: str = "", guidelines: str = "",
                   reviews_per_item: int = 1, description: str = "") -> Project:
    """Create a project with its base learner version active, and its owner as admin."""
    project = Project(name=name, slug=slug or slugify(name)[:60], guidelines=guidelines,
                      reviews_per_item=reviews_per_item, description=description)
    project.full_clean()
    project.save()
    learner_base_create(project=project)
    if owner is not None:
        membership_set(project=project, user=owner, role=Role.ADMIN)
    return project


# The settings admins change on the project page (auto-accept), the Oversight page (blind and
# gold shares) and through the API; each derives its fields (bounds, help text) from these
# model fields.
AUTO_ACCEPT_SETTINGS = ("target_precision", "audit_rate")
OVERSIGHT_SETTINGS = ("blind_share", "gold_share")
PROJECT_SETTINGS = AUTO_ACCEPT_SETTINGS + OVERSIGHT_SETTINGS


@transaction.atomic
def project_settings_update(*, project: Project, **values: float) -> Project:
    """Change project settings (PROJECT_SETTINGS only); invalid values change nothing. Items an
    expert has open keep the mode (blind, gold) they were served in; new shares apply to the
    next ones."""
    unknown = set(values) - set(PROJECT_SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown project settings: {', '.join(sorted(unknown))}; the "
                              f"settings are {', '.join(PROJECT_SETTINGS)}.")
    locked = Project.objects.select_for_update().get(pk=project.pk)
    for name, value in values.items():
        setattr(locked, name, value)
    locked.full_clean(exclude=["critic_head"])
    locked.save(update_fields=list(values))
    for name in values:
        setattr(project, name, getattr(locked, name))
    return project


def learner_base_create(*, project: Project) -> LearnerVersion:
    """The base model as the project's first (active) learner version."""
    version = LearnerVersion(project=project, name="base", base_model=settings.LEARNER_MODEL,
                             status=LearnerVersion.Status.ACTIVE)
    version.full_clean()
    version.save()
    return version


def membership_set(*, project: Project, user, role: str) -> Membership:
    """Add a member or change their role."""
    membership, _ = Membership.objects.get_or_create(project=project, user=user,
                                                     defaults={"role": role})
    if membership.role != role:
        membership.role = role
        membership.full_clean()
        membership.save(update_fields=["role"])
    return membership


def user_ensure(*, username: str, password: str, email: str = "", is_superuser: bool = False):
    """Create a user or reset the password of an existing one (demo setup is idempotent)."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    user.is_staff = user.is_superuser = is_superuser
    user.save()
    return user
