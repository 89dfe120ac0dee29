"""Read vLLM's Prometheus metrics: what the server itself saw (requests running, tokens made)."""

from __future__ import annotations

import re
import time

import httpx2

ATTEMPTS = 5


def metric(server_root: str, name: str, **labels: str) -> float:
    """The sum of one metric's samples whose labels include `labels`."""
    text = scrape(server_root)
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? ([0-9.eE+-]+)$", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "")
                         for key, value in labels.items()):
            total += float(match.group(2))
    return total


def scrape(server_root: str) -> str:
    """The metrics page. A server busy generating has reset a scrape's connection in CI
    (`ReadError: Connection reset by peer`), so a transport error is asked again, a few times."""
    for _ in range(ATTEMPTS - 1):
        try:
            return _get(server_root)
        except httpx2.TransportError:
            time.sleep(0.2)
    return _get(server_root)


def _get(server_root: str) -> str:
    response = httpx2.get(server_root + "/metrics", timeout=10)
    response.raise_for_status()
    return response.text
