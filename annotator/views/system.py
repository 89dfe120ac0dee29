"""System health for admins: is a worker processing the queue?"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django_tasks_db.models import DBTaskResult

from annotator.tasks.health import health_check


@require_http_methods(["GET", "POST"])
@staff_member_required
def health(request: HttpRequest) -> HttpResponse:
    """GET shows recent health checks; POST enqueues one for a worker to answer."""
    if request.method == "POST":
        health_check.enqueue(note=f"requested by {request.user.username}")
    checks = DBTaskResult.objects.filter(
        task_path="annotator.tasks.health.health_check").order_by("-enqueued_at")[:10]
    running = DBTaskResult.objects.filter(status="RUNNING").count()
    queued = DBTaskResult.objects.filter(status="READY").count()
    return render(request, "annotator/health.html",
                  {"checks": checks, "running": running, "queued": queued})
