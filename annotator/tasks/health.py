"""A trivial job that proves a worker is alive and processing the queue."""

from __future__ import annotations

import os
import socket

from django.utils import timezone
from django_tasks import task


@task()
def health_check(note: str = "") -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "at": timezone.now().isoformat(),
            "note": note}
