"""Simulated experts for locust: each takes an API token and loops "next item, approve it".

Used by benchmarks/load.py (headless, with a throwaway server); it also works on its own against
a running server whose experts have tokens:

    LOAD_SLUG=demo LOAD_KEYS=sa_key1,sa_key2 locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import itertools
import os
import threading

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

# load.py fills these before starting the users; the environment works for a plain `locust` run.
SLUG = os.environ.get("LOAD_SLUG", "load")
KEYS: list[str] = [key for key in os.environ.get("LOAD_KEYS", "").split(",") if key]
_acknowledged = [0]  # decide calls answered 201: what the experts were told
_lock = threading.Lock()
_next_key = itertools.count()


def acknowledged() -> int:
    return _acknowledged[0]


class Expert(FastHttpUser):
    """One expert with their own API token: claim the next item, approve it, repeat."""

    # Seconds between items: a fast expert who reads and presses one key (load.py sets it).
    wait_time = between(float(os.environ.get("LOAD_THINK_MIN", "0.5")),
                        float(os.environ.get("LOAD_THINK_MAX", "1.5")))

    def on_start(self) -> None:
        key = KEYS[next(_next_key) % len(KEYS)]
        self.headers = {"Authorization": f"Bearer {key}"}

    @task
    def review_one(self) -> None:
        with self.client.get(f"/api/projects/{SLUG}/review/next/", headers=self.headers,
                             name="review next", catch_response=True) as answer:
            if answer.status_code == 204:
                answer.success()  # the queue is empty for this expert
                return
            if answer.status_code != 200:
                answer.failure(f"next: {answer.status_code} {answer.text[:200]}")
                return
            item = answer.json()["id"]
        with self.client.post(f"/api/projects/{SLUG}/review/items/{item}/decide/",
                              json={"action": "approve", "seconds_spent": 3.5},
                              headers=self.headers, name="review decide",
                              catch_response=True) as answer:
            if answer.status_code == 201:
                with _lock:
                    _acknowledged[0] += 1
            else:
                answer.failure(f"decide: {answer.status_code} {answer.text[:200]}")
