"""Read vLLM's Prometheus metrics: what the server itself saw (requests running, tokens made)."""

from __future__ import annotations

import re

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
