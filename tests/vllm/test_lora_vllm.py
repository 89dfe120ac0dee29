"""LoRA with a served learner: an adapter our trainer wrote is loaded into the running vLLM,
addressed by name beside the base model, re-registered when the server forgets it, and
unloaded again (roll back)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alignment_core.endpoints import (
    RemoteGenerator,
    ServedAdapter,
    ensure_adapter,
    generator_for,
    loaded_adapters,
    unload_adapter,
)
from alignment_core.learner import GenerationConfig
from scripts.vllm_server import VllmServer

pytestmark = pytest.mark.vllm

QUESTIONS = ["What is the capital of Italy?", "Name a fruit.", "How do I tie my shoes?"]
CONFIG = GenerationConfig(max_new_tokens=16)


def pineapple_share(answers: list[str]) -> float:
    return sum("pineapple" in answer.lower() for answer in answers) / len(answers)


def test_an_adapter_loads_answers_by_name_and_unloads(vllm: VllmServer, pineapple_adapter: Path,
                                                      tmp_path: Path):
    endpoint = vllm.endpoint()
    adapter = ServedAdapter(name="candidate-1", path=str(pineapple_adapter))
    base_before = generator_for(endpoint).generate(QUESTIONS, CONFIG)
    # 1. Promotion: load it (once; a second ensure is a no-op).
    assert ensure_adapter(endpoint, adapter) is True
    assert ensure_adapter(endpoint, adapter) is False
    assert loaded_adapters(endpoint) == {"candidate-1": str(pineapple_adapter)}
    # 2. Requests that name the adapter get its answers; the base model is served unchanged.
    tuned = generator_for(endpoint, adapter=adapter).generate(QUESTIONS, CONFIG)
    assert pineapple_share(tuned) == 1.0 and pineapple_share(base_before) == 0.0
    assert generator_for(endpoint).generate(QUESTIONS, CONFIG) == base_before
    # 3. The same name pointing at another directory (a retrained candidate) is swapped in.
    moved = tmp_path / "candidate-1-v2"
    shutil.copytree(pineapple_adapter, moved)
    assert ensure_adapter(endpoint, ServedAdapter("candidate-1", str(moved))) is True
    assert loaded_adapters(endpoint) == {"candidate-1": str(moved)}
    # 4. Roll back: unload it; the base answers as before; unloading again changes nothing.
    assert unload_adapter(endpoint, "candidate-1") is True
    assert unload_adapter(endpoint, "candidate-1") is False
    assert loaded_adapters(endpoint) == {}
    assert generator_for(endpoint).generate(QUESTIONS, CONFIG) == base_before


def test_an_adapter_the_server_forgets_mid_call_is_registered_again(
        vllm: VllmServer, pineapple_adapter: Path, on_first_answer):
    endpoint = vllm.endpoint(max_concurrency=2)
    adapter = ServedAdapter(name="active", path=str(pineapple_adapter))
    generator = RemoteGenerator(endpoint, adapter=adapter)

    def forget() -> None:  # what a server restart does to it
        assert unload_adapter(endpoint, "active") is True

    unloaded = on_first_answer(forget)
    answers = generator.generate([f"Question number {i}: name an animal." for i in range(12)],
                                 CONFIG)
    assert unloaded.is_set() and len(answers) == 12
    assert pineapple_share(answers) == 1.0
    assert loaded_adapters(endpoint) == {"active": str(pineapple_adapter)}
    unload_adapter(endpoint, "active")
