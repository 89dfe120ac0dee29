"""The small shapes shared by local and remote generation: token usage, a served adapter, and
the `Generator` protocol that `Learner` and `RemoteGenerator` both satisfy."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

# vLLM accepts any string as a LoRA name; this keeps names safe in URLs, logs and file names.
_ADAPTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class Usage:
    """Tokens a generator has spent, as the server (or the local tokenizer) counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # answered prompts (a retried prompt counts once, when it succeeds)

    def add(self, prompt_tokens: int, completion_tokens: int, requests: int = 1) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.requests += requests

    def __sub__(self, other: Usage) -> Usage:
        """What was spent between two readings: `after - before`."""
        return Usage(self.prompt_tokens - other.prompt_tokens,
                     self.completion_tokens - other.completion_tokens,
                     self.requests - other.requests)

    def copy(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens, self.requests)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ServedAdapter:
    """A LoRA adapter as a server knows it: the name requests address, the directory it loads.

    `path` is read by the server, so it must be the adapter directory as the server's host sees
    it (the same path when web, workers and vLLM share a disk or a mount).
    """

    name: str
    path: str

    def __post_init__(self) -> None:
        if not _ADAPTER_NAME_RE.match(self.name):
            raise ValueError(f"Adapter name {self.name!r} must be 1-128 letters, digits, '.', "
                             "'_' or '-', starting with a letter or digit.")
        if not self.path:
            raise ValueError("An adapter needs the directory its server loads it from.")


class Generator(Protocol):
    """Anything that answers chat prompts like `alignment_core.learner.Learner` does."""

    usage: Usage

    def generate(
        self,
        prompts: list[Any],
        config: Any = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[str]: ...
