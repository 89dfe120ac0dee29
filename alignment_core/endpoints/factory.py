"""`generator_for`: the one place that turns an endpoint into something that generates."""

from __future__ import annotations

from pathlib import Path

from alignment_core.endpoints.config import EndpointConfig
from alignment_core.endpoints.types import Generator, ServedAdapter


def generator_for(
    endpoint: EndpointConfig,
    adapter: ServedAdapter | None = None,
    cache_dir: Path | str = Path("var/models"),
    device: str | None = None,
) -> Generator:
    """The in-process `Learner` for a local endpoint, a `RemoteGenerator` for an openai one.

    `adapter` is the LoRA adapter to answer with: loaded from `adapter.path` in-process, or
    registered on the server and addressed as `adapter.name`. `cache_dir` is where the bundled
    model is converted (MODEL_CACHE_DIR); `device` picks a local device (None: CUDA if present).
    A local endpoint loads its model here, which takes a while: callers keep the generator.
    """
    endpoint.validate()
    if endpoint.kind == "openai":
        from alignment_core.endpoints.remote import RemoteGenerator

        return RemoteGenerator(endpoint, adapter=adapter)
    from alignment_core.learner import Learner
    from alignment_core.model_loader import resolve_model_dir

    model_dir = resolve_model_dir(endpoint.model, Path(cache_dir))
    return Learner.from_dir(model_dir, adapter=adapter.path if adapter else None, device=device)
