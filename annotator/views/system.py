"""System health for admins: is a worker processing the queue?"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from annotator.queue_backends import queue_overview
from annotator.tasks.health import health_check


@require_http_methods(["GET", "POST"])
@staff_member_required
def health(request: HttpRequest) -> HttpResponse:
    """GET shows recent health checks; POST enqueues one for a worker to answer."""
    if request.method == "POST":
        health_check.enqueue(note=f"requested by {request.user.username}")
    return render(request, "annotator/health.html", queue_overview())
