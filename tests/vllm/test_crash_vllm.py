"""The server killed mid-generation: the call fails with one error that names the endpoint and
returns nothing partial; after a restart the same call completes, with the active adapter
registered again before its first request."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment_core.endpoints import EndpointError, RemoteGenerator, ServedAdapter, loaded_adapters
from alignment_core.learner import GenerationConfig
from scripts.vllm_server import VllmServer
from tests.vllm.conftest import START_TIMEOUT_S

pytestmark = pytest.mark.vllm


def test_a_killed_server_fails_the_call_clearly_and_a_rerun_completes(
        vllm: VllmServer, pineapple_adapter: Path, on_first_answer):
    endpoint = vllm.endpoint(max_concurrency=4, max_retries=2)
    adapter = ServedAdapter(name="active", path=str(pineapple_adapter))
    generator = RemoteGenerator(endpoint, adapter=adapter, backoff_s=0.2)
    prompts = [f"Question number {i}: name an animal." for i in range(16)]
    config = GenerationConfig(max_new_tokens=48, min_new_tokens=48)
    killed = on_first_answer(vllm.kill)  # prompts are still unsent when the server dies
    with pytest.raises(EndpointError) as caught:
        generator.generate(prompts, config)
    assert killed.is_set()
    message = str(caught.value)
    assert vllm.base_url in message and "'active'" in message and "'smollm2'" in message
    # A restarted server has forgotten the adapter; the rerun registers it and completes.
    vllm.start(timeout=START_TIMEOUT_S)
    assert loaded_adapters(endpoint) == {}
    answers = generator.generate(prompts, config)
    assert len(answers) == 16 and all("pineapple" in answer.lower() for answer in answers)
    assert loaded_adapters(endpoint) == {"active": str(pineapple_adapter)}
