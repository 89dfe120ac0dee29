"""The objects management commands are pointed at by name, or a CommandError that says which
name was not found."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from annotator.models import Project


def project_named(slug: str, *, hint: str = "") -> Project:
    """The project with this slug (`hint` is added to the error, e.g. how to create it)."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"No project with slug {slug!r}{'; ' + hint if hint else ''}.")
    return project


def user_named(username: str | None):
    """The user with this name, or None when no name was given."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r}.")
    return user
