"""One page view for every job action (cancel, resume) of every kind of job, and the rule for
the panels that poll a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from annotator.access import ProjectAccess, project_access
from annotator.models import Job, Role


def job_action_view(*, action: Callable[..., Any], lookup: Callable[[ProjectAccess, int], Job],
                    panel: Callable[[HttpRequest, ProjectAccess, Job], HttpResponse],
                    home: Callable[[Job], Any] | None = None) -> Callable[..., HttpResponse]:
    """A POST view for admins that runs `action(job=...)` (`job_cancel`, `job_resume`) on the
    job `lookup(access, pk)` finds, then answers htmx with the refreshed `panel` and a plain
    form post with a redirect to `home(job)` (default: the job's own page).

    A job in the wrong state is a flash message, not an error page: the service's rule is the
    same one the API answers with.
    """

    @require_POST
    @login_required
    def view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
        access = project_access(request.user, slug, minimum=Role.ADMIN)
        job = lookup(access, pk)
        try:
            action(job=job)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        if request.htmx:
            job.refresh_from_db()
            return panel(request, access, job)
        return redirect(home(job) if home else job)

    return view


def poll_finished(request: HttpRequest, finished: bool) -> HttpResponse | None:
    """The answer to a panel's htmx poll (`?poll=1`) once its job has finished: reload the page
    once, so what the job produced (a report, charts, clusters) appears; a finished page's
    panel no longer polls. None while the job runs, or for any other request."""
    if getattr(request, "htmx", False) and request.GET.get("poll") and finished:
        return HttpResponseClientRefresh()
    return None
