"""Model endpoints without a server: settings that a form rejects, the key never kept, the
factory, and a dead endpoint failing with one error that names it. tests/vllm runs the same
generator against a real vLLM."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from alignment_core.endpoints import (
    EndpointConfig,
    EndpointError,
    RemoteGenerator,
    ServedAdapter,
    Usage,
    generator_for,
)
from alignment_core.learner import Cancelled, GenerationConfig, Learner


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def remote(**fields) -> EndpointConfig:
    return EndpointConfig(**{"kind": "openai", "model": "smollm2",
                             "base_url": f"http://127.0.0.1:{closed_port()}/v1", **fields})


def test_it_accepts_a_plain_remote_endpoint():
    remote().validate()
    EndpointConfig().validate()  # the default: the bundled model in-process


@pytest.mark.parametrize("fields, words", [
    ({"kind": "grpc"}, "kind must be one of local, openai"),
    ({"base_url": "127.0.0.1:8000"}, "base_url must be an http(s) URL"),
    ({"model": " "}, "model is required"),
    ({"api_key_env": "sk-live-123"}, "api_key_env must be an environment variable name"),
    ({"max_concurrency": 0}, "max_concurrency must be between 1 and 512"),
    ({"timeout_s": 0}, "timeout_s must be more than 0"),
    ({"max_retries": 11}, "max_retries must be between 0 and 10"),
    ({"defaults": {"model": "other"}}, "defaults may not set ['model']"),
])
def test_it_rejects_bad_settings_with_a_sentence(fields: dict, words: str):
    with pytest.raises(ValueError, match=re.escape(words)):
        remote(**fields).validate()


def test_it_reports_every_problem_at_once():
    with pytest.raises(ValueError, match=r"base_url must .* max_concurrency must"):
        EndpointConfig(kind="openai", base_url="nope", max_concurrency=0).validate()


def test_the_key_is_read_from_the_named_variable_and_never_kept(monkeypatch):
    monkeypatch.setenv("SUPERALIGN_TEST_KEY", "sk-secret-value")
    endpoint = remote(api_key_env="SUPERALIGN_TEST_KEY")
    assert endpoint.api_key() == "sk-secret-value"
    stored = json.dumps(endpoint.to_dict())
    assert "sk-secret-value" not in stored and "sk-secret-value" not in repr(endpoint)
    assert EndpointConfig.from_dict(json.loads(stored)) == endpoint


def test_an_unset_key_variable_is_named_in_the_error(monkeypatch):
    monkeypatch.delenv("SUPERALIGN_MISSING_KEY", raising=False)
    endpoint = remote(api_key_env="SUPERALIGN_MISSING_KEY")
    with pytest.raises(EndpointError, match="SUPERALIGN_MISSING_KEY") as caught:
        RemoteGenerator(endpoint).generate(["hi"])
    assert endpoint.base_url in str(caught.value)


def test_unknown_stored_fields_are_refused():
    with pytest.raises(ValueError, match="api_key"):
        EndpointConfig.from_dict({"kind": "openai", "api_key": "sk-1"})


def test_a_dead_endpoint_fails_once_naming_model_and_url():
    endpoint = remote(max_retries=2, max_concurrency=4)
    generator = RemoteGenerator(endpoint, backoff_s=0.01)
    with pytest.raises(EndpointError) as caught:
        generator.generate([f"question {i}" for i in range(8)], GenerationConfig(max_new_tokens=4))
    message = str(caught.value)
    assert endpoint.base_url in message and "'smollm2'" in message
    assert "3 attempts" in message and "connection failed" in message
    assert generator.usage == Usage()


def test_a_cancel_before_the_first_request_sends_nothing():
    generator = RemoteGenerator(remote(), backoff_s=0.01)
    with pytest.raises(Cancelled):
        generator.generate(["hi"], should_cancel=lambda: True)


def test_no_prompts_need_no_server():
    assert RemoteGenerator(remote()).generate([]) == []


def test_request_bodies_carry_defaults_sampling_and_the_adapter_name():
    endpoint = remote(defaults={"repetition_penalty": 1.1})
    adapter = ServedAdapter(name="candidate-7", path="/data/adapters/7")
    generator = RemoteGenerator(endpoint, adapter=adapter)
    body = generator.request_body("Hello", GenerationConfig(max_new_tokens=9, do_sample=True,
                                                            seed=5, system_prompt="Be brief."), 2)
    assert body["model"] == "candidate-7" and body["max_tokens"] == 9
    assert body["seed"] == 7 and body["repetition_penalty"] == 1.1
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Hello"}]
    greedy = generator.request_body("Hello", GenerationConfig(), 0)
    assert greedy["temperature"] == 0.0 and "seed" not in greedy


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a/b", "x" * 129])
def test_adapter_names_are_safe(name: str):
    with pytest.raises(ValueError, match="Adapter name"):
        ServedAdapter(name=name, path="/tmp/adapter")


def test_the_factory_gives_a_remote_generator_for_an_openai_endpoint():
    endpoint = remote()
    generator = generator_for(endpoint)
    assert isinstance(generator, RemoteGenerator) and generator.endpoint == endpoint


def test_the_factory_gives_the_local_learner_with_the_same_usage_tally(tiny_dir: Path):
    generator = generator_for(EndpointConfig(kind="local", model=str(tiny_dir)), device="cpu")
    assert isinstance(generator, Learner)
    prompts = ["hi", "What is 2 + 2?"]
    generator.generate(prompts, GenerationConfig(max_new_tokens=3, min_new_tokens=3))
    rendered = [generator.tokenizer(generator.render(p), add_special_tokens=False)["input_ids"]
                for p in prompts]
    assert generator.usage == Usage(prompt_tokens=sum(map(len, rendered)), completion_tokens=6,
                                    requests=2)


def test_a_cancel_interrupts_the_backoff_between_retries():
    # Ten retries five seconds apart would take minutes; the cancel ends the call instead of
    # the EndpointError that spent retries would raise.
    generator = RemoteGenerator(remote(max_retries=10), backoff_s=5.0)
    asked: list[int] = []

    def cancel_on_second_check() -> bool:
        asked.append(1)
        return len(asked) >= 2

    with pytest.raises(Cancelled, match="after 0 of 2"):
        generator.generate(["hi", "there"], should_cancel=cancel_on_second_check)
