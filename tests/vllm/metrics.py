"""Read vLLM's Prometheus metrics: what the server itself saw (requests running, aborted)."""

from __future__ import annotations

import re
import threading

import httpx2


def metric(server_root: str, name: str, **labels: str) -> float:
    """The sum of one metric's samples whose labels include `labels`."""
    text = httpx2.get(server_root + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? ([0-9.eE+-]+)$", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "")
                         for key, value in labels.items()):
            total += float(match.group(2))
    return total


class PeakRunning:
    """Samples `vllm:num_requests_running` in a thread; `.peak` is the most seen at once."""

    def __init__(self, server_root: str, interval: float = 0.1) -> None:
        self.server_root = server_root
        self.interval = interval
        self.peak = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(self.interval):
            self.peak = max(self.peak, metric(self.server_root, "vllm:num_requests_running"))

    def __enter__(self) -> PeakRunning:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join()
