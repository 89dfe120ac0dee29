"""Where a role's model runs: the plain `EndpointConfig` every generator is built from.

A project gives each role (learner, critic writer, critic judge, attacker LM) an endpoint:
`local` runs a Hugging Face directory (or the bundled model) in this process, `openai` talks to
any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp's server, Ollama). The Django side
stores these fields and builds the config from them; nothing here imports Django.

An API key is never a field: `api_key_env` names the environment variable that holds it, read
at request time, so the key is never stored, exported, logged or shown in an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit

Kind = Literal["local", "openai"]
KINDS: tuple[str, ...] = ("local", "openai")
# The roles a project can give an endpoint of its own; the one declaration the admin, the API
# and the services derive their choices from.
ROLES: tuple[str, ...] = ("learner", "critic_writer", "critic_judge", "attacker_lm")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Request fields the generator sets itself; defaults may not override them.
RESERVED_DEFAULTS = frozenset({"model", "messages", "stream", "n"})


class EndpointError(Exception):
    """An endpoint failed for good (dead server, bad key, unknown model, retries spent).

    The message always names the endpoint (model and base URL), never the key, so a job can
    fail with it as it is and a person knows which server to look at.
    """


@dataclass(frozen=True)
class EndpointConfig:
    """One model endpoint; `validate()` says what is wrong in words a form can show."""

    kind: Kind = "local"
    # local: "bundled" or a local Hugging Face model directory; openai: the served model name
    # (vLLM's --served-model-name, or a LoRA adapter's name on that server).
    model: str = "bundled"
    base_url: str = ""  # openai: the API root clients use, e.g. http://127.0.0.1:8001/v1
    api_key_env: str = ""  # the NAME of the environment variable holding the key; "" for none
    max_concurrency: int = 8  # requests in flight at once (a server batches them)
    timeout_s: float = 120.0  # per request: connect, and then the whole answer
    max_retries: int = 4  # extra tries on 429, 5xx, timeouts and connection errors
    structured_output: bool = False  # the server honours response_format json_schema
    # Extra request fields sent with every request, e.g. {"repetition_penalty": 1.1} or
    # {"stop": ["</s>"]}; a per-call GenerationConfig still sets max_tokens and sampling.
    defaults: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError with every problem found, one sentence each."""
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}.")
        if not self.model.strip():
            problems.append("model is required.")
        if self.kind == "openai":
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"base_url must be an http(s) URL, not {self.base_url!r}.")
        if self.api_key_env and not _ENV_NAME_RE.match(self.api_key_env):
            problems.append("api_key_env must be an environment variable name "
                            "(letters, digits, underscores), not the key itself.")
        if not 1 <= self.max_concurrency <= 512:
            problems.append("max_concurrency must be between 1 and 512.")
        if not 0 < self.timeout_s <= 3600:
            problems.append("timeout_s must be more than 0 and at most 3600 seconds.")
        if not 0 <= self.max_retries <= 10:
            problems.append("max_retries must be between 0 and 10.")
        if not isinstance(self.defaults, dict):
            problems.append("defaults must be a JSON object.")
        elif RESERVED_DEFAULTS & set(self.defaults):
            problems.append(f"defaults may not set {sorted(RESERVED_DEFAULTS & set(self.defaults))}.")
        if problems:
            raise ValueError(" ".join(problems))

    @property
    def label(self) -> str:
        """How errors and logs name this endpoint: the model and where it runs."""
        if self.kind == "local":
            return f"local model {self.model!r}"
        return f"model {self.model!r} at {self.base_url}"

    @property
    def server_root(self) -> str:
        """The server's own root (where vLLM serves /health): base_url without a trailing /v1."""
        root = self.base_url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    def api_key(self) -> str | None:
        """Read the key from the named variable now; a named but unset variable is an error."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise EndpointError(f"{self.label}: the environment variable {self.api_key_env} "
                                "that should hold its API key is not set.")
        return value

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; holds the variable's name only, so it is safe to store and export."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointConfig:
        """Build from stored fields; unknown keys are an error rather than silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown endpoint fields: {sorted(unknown)}")
        return cls(**data)
