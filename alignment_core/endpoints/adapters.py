"""LoRA adapters on a vLLM server: load, unload, list, and re-register after a restart.

vLLM started with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` loads adapters at
run time (`POST /v1/load_lora_adapter`); requests then address one by its name as the model.
A restarted server has forgotten them, so `ensure_adapter` (idempotent: one GET when nothing
changed) runs before each generation call and whenever a request finds its adapter missing.

These are plain blocking functions; each call is one or two short HTTP requests.
"""

from __future__ import annotations

import httpx2

from alignment_core.endpoints.config import EndpointConfig, EndpointError
from alignment_core.endpoints.types import ServedAdapter

ADMIN_TIMEOUT_S = 60.0  # loading an adapter reads its files and may wait for the engine


def auth_headers(endpoint: EndpointConfig) -> dict[str, str]:
    """The Authorization header when the endpoint names a key variable (read now, never kept)."""
    key = endpoint.api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def _request(endpoint: EndpointConfig, method: str, path: str, json: dict | None = None,
             timeout: float = ADMIN_TIMEOUT_S) -> httpx2.Response:
    url = endpoint.base_url.rstrip("/") + path
    try:
        return httpx2.request(method, url, json=json, headers=auth_headers(endpoint),
                              timeout=timeout)
    except httpx2.TimeoutException:
        raise EndpointError(f"{endpoint.label}: no answer from {path} within {timeout:g} s") \
            from None
    except httpx2.TransportError as error:
        raise EndpointError(f"{endpoint.label}: connection failed ({type(error).__name__}: "
                            f"{error or 'no details'})") from None


def _fail(endpoint: EndpointConfig, what: str, response: httpx2.Response) -> EndpointError:
    text = " ".join(response.text.split())[:300]
    return EndpointError(f"{endpoint.label}: {what} failed: HTTP {response.status_code}: {text}")


def server_healthy(endpoint: EndpointConfig, timeout: float = 5.0) -> bool:
    """Does the server answer its health check (vLLM's `GET /health`) with 200 now?"""
    try:
        response = httpx2.get(endpoint.server_root + "/health", headers=auth_headers(endpoint),
                              timeout=timeout)
    except httpx2.TransportError:
        return False
    return response.status_code == 200


def loaded_adapters(endpoint: EndpointConfig) -> dict[str, str]:
    """The adapters the server holds now: {name: directory}.

    vLLM lists them in `GET /v1/models` as models whose `parent` is the base model and whose
    `root` is the directory they were loaded from.
    """
    response = _request(endpoint, "GET", "/models", timeout=30.0)
    if response.status_code != 200:
        raise _fail(endpoint, "listing models", response)
    return {card["id"]: card.get("root") or "" for card in response.json().get("data", [])
            if card.get("parent")}


def load_adapter(endpoint: EndpointConfig, adapter: ServedAdapter) -> None:
    """Load `adapter` under its name. Fails if the server holds that name already."""
    response = _request(endpoint, "POST", "/load_lora_adapter",
                        json={"lora_name": adapter.name, "lora_path": adapter.path})
    if response.status_code != 200:
        raise _fail(endpoint, f"loading adapter {adapter.name!r} from {adapter.path}", response)


def unload_adapter(endpoint: EndpointConfig, name: str) -> bool:
    """Unload the adapter called `name`; False when the server did not hold it (no error)."""
    if name not in loaded_adapters(endpoint):
        return False
    response = _request(endpoint, "POST", "/unload_lora_adapter", json={"lora_name": name})
    if response.status_code != 200 and name in loaded_adapters(endpoint):
        raise _fail(endpoint, f"unloading adapter {name!r}", response)
    return True


def ensure_adapter(endpoint: EndpointConfig, adapter: ServedAdapter) -> bool:
    """Make the server hold `adapter` under its name, from its directory. Idempotent.

    Returns True when it had to load it (first use, a restart, or the name pointing at another
    directory, which is unloaded first), False when it was already there.
    """
    held = loaded_adapters(endpoint)
    if held.get(adapter.name) == adapter.path:
        return False
    if adapter.name in held:
        unload_adapter(endpoint, adapter.name)
    try:
        load_adapter(endpoint, adapter)
    except EndpointError:
        # Another worker may have loaded the same adapter between our list and our load.
        if loaded_adapters(endpoint).get(adapter.name) != adapter.path:
            raise
    return True
