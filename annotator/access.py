"""Per-project role checks, in one place for every HTML and API view.

A user outside a project gets 404 for everything in it (its existence is not revealed); a
member whose role is too low gets 403. DRF turns both exceptions into JSON 404/403 responses,
so API views call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotator.models import Membership, Project, Role
from annotator.models.projects import ROLE_RANK


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: Role

    def can(self, minimum: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[Role(minimum)]

    @property
    def is_admin(self) -> bool:
        return self.can(Role.ADMIN)

    @property
    def is_expert(self) -> bool:
        return self.can(Role.EXPERT)


def role_of(user, project: Project) -> Role | None:
    """The user's role in the project; superusers act as admins everywhere."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    membership = Membership.objects.filter(project=project, user=user).only("role").first()
    return Role(membership.role) if membership else None


def project_access(user, slug: str, minimum: str = Role.VIEWER) -> ProjectAccess:
    """Return the user's access to the project named by `slug`, or raise 404/403.

    One query for members (membership joined with its project), since every request starts here;
    get() rather than first(), which would add an ORDER BY to it (both rows are unique).
    """
    if not user.is_authenticated or not user.is_active:
        raise Http404("No such project.")
    try:
        if user.is_superuser:
            project, role = Project.objects.get(slug=slug), Role.ADMIN
        else:
            membership = Membership.objects.select_related("project").get(project__slug=slug,
                                                                            user=user)
            project, role = membership.project, Role(membership.role)
    except (Project.DoesNotExist, Membership.DoesNotExist):
        raise Http404("No such project.") from None
    access = ProjectAccess(project=project, role=role)
    if not access.can(minimum):
        raise PermissionDenied(f"This needs the {Role(minimum).label.lower()} role in {project.name}.")
    return access


def projects_for(user) -> QuerySet[Project]:
    """The projects a user can see (all of them for superusers)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()
