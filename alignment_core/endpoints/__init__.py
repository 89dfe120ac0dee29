"""Model endpoints: where each role's model runs, and a generator for either kind.

    from alignment_core.endpoints import EndpointConfig, generator_for
    endpoint = EndpointConfig(kind="openai", model="smollm2", base_url="http://127.0.0.1:8001/v1")
    answers = generator_for(endpoint).generate(["Hello"], GenerationConfig(max_new_tokens=32))

`local` gives the in-process `Learner`, `openai` a `RemoteGenerator`; both answer through
`generate(prompts, config, progress=, should_cancel=)` and count tokens in `.usage`.
"""

from alignment_core.endpoints.adapters import (
    ensure_adapter,
    load_adapter,
    loaded_adapters,
    server_healthy,
    unload_adapter,
)
from alignment_core.endpoints.config import (
    KINDS,
    ROLES,
    EndpointConfig,
    EndpointError,
)
from alignment_core.endpoints.factory import generator_for
from alignment_core.endpoints.remote import RemoteGenerator
from alignment_core.endpoints.types import Generator, ServedAdapter, Usage

__all__ = [
    "KINDS", "ROLES", "EndpointConfig", "EndpointError", "Generator", "RemoteGenerator",
    "ServedAdapter", "Usage", "ensure_adapter", "generator_for", "load_adapter",
    "loaded_adapters", "server_healthy", "unload_adapter",
]
