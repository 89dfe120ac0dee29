"""The remote generator against a real vLLM serving the bundled model: concurrent requests in
input order, usage as the tokenizer counts it, retries through real faults, cancel that aborts
the server's work, and a clear error for a model the server does not have."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from alignment_core.endpoints import EndpointError, RemoteGenerator, generator_for
from alignment_core.learner import Cancelled, GenerationConfig
from scripts.vllm_server import VllmServer
from tests.vllm.fault_proxy import fault_proxy
from tests.vllm.metrics import metric

pytestmark = pytest.mark.vllm

# Capitals the 135M model names reliably, so each answer shows which prompt it belongs to.
CAPITALS = {"France": "Paris", "Italy": "Rome", "Japan": "Tokyo", "Germany": "Berlin",
            "Egypt": "Cairo", "Russia": "Moscow", "England": "London", "China": "Beijing",
            "Greece": "Athens"}


def test_answers_come_back_in_input_order_from_concurrent_requests(vllm: VllmServer):
    countries = list(CAPITALS) * 2
    reports: list[tuple[int, int]] = []
    # Counted where the requests pass, not by sampling the server's gauge: a fast server can
    # finish all eighteen between two samples.
    with fault_proxy(vllm.endpoint().server_root) as proxy:
        generator = generator_for(vllm.endpoint(base_url=proxy.base_url, max_concurrency=4))
        assert isinstance(generator, RemoteGenerator)
        answers = generator.generate([f"What is the capital of {c}?" for c in countries],
                                     GenerationConfig(max_new_tokens=16),
                                     progress=lambda done, total: reports.append((done, total)))
    assert [CAPITALS[c] in answer for c, answer in zip(countries, answers)] == [True] * 18
    # Several of our requests were at the server at once, never more than we allowed.
    assert proxy.completions_seen == 18
    assert 2 <= proxy.peak_in_flight <= 4
    assert reports[-1] == (18, 18) and reports == sorted(reports)


def test_usage_is_what_the_tokenizer_counts(vllm: VllmServer, real_model_dir: Path):
    from transformers import AutoTokenizer

    prompts = ["Name a colour.", [{"role": "user", "content": "Count to three."}]]
    config = GenerationConfig(max_new_tokens=12, min_new_tokens=12, system_prompt="Be brief.")
    generator = generator_for(vllm.endpoint())
    generator.generate(prompts, config)
    tokenizer = AutoTokenizer.from_pretrained(str(real_model_dir))
    rendered = [tokenizer.apply_chat_template(generator.request_body(p, config, 0)["messages"],
                                              add_generation_prompt=True, tokenize=False)
                for p in prompts]
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in rendered]
    assert generator.usage.prompt_tokens == sum(lengths)
    assert generator.usage.completion_tokens == 24 and generator.usage.requests == 2


def test_transient_faults_are_retried_until_the_answers_arrive(vllm: VllmServer):
    # The stall outlasts the timeout; the timeout leaves a busy machine time to answer.
    with fault_proxy(vllm.endpoint().server_root, ["429", "503", "drop", "stall"],
                     stall_s=20.0) as proxy:
        endpoint = vllm.endpoint(base_url=proxy.base_url, max_concurrency=1, timeout_s=10,
                                 max_retries=4)
        generator = RemoteGenerator(endpoint, backoff_s=0.05)
        answers = generator.generate(["What is the capital of France?", "Name a colour."],
                                     GenerationConfig(max_new_tokens=12))
    assert "Paris" in answers[0] and answers[1]
    assert proxy.completions_seen == 6  # four faults, then one success per prompt
    assert generator.usage.requests == 2


def test_a_fault_that_outlasts_the_retries_fails_naming_the_endpoint(vllm: VllmServer):
    with fault_proxy(vllm.endpoint().server_root, ["503"] * 3) as proxy:
        endpoint = vllm.endpoint(base_url=proxy.base_url, max_retries=2)
        with pytest.raises(EndpointError) as caught:
            RemoteGenerator(endpoint, backoff_s=0.05).generate(["hi"])
    message = str(caught.value)
    assert proxy.base_url in message and "'smollm2'" in message
    assert "after 3 attempts" in message and "HTTP 503" in message


def test_a_model_the_server_lacks_is_refused_at_once_with_its_reason(vllm: VllmServer):
    endpoint = vllm.endpoint(model="no-such-model")
    with pytest.raises(EndpointError) as caught:
        RemoteGenerator(endpoint).generate(["hi"])
    message = str(caught.value)
    assert "'no-such-model'" in message and vllm.base_url in message and "HTTP 404" in message


def test_cancel_closes_the_requests_and_the_server_aborts_them(vllm: VllmServer):
    root = vllm.endpoint().server_root
    tokens_before = metric(root, "vllm:generation_tokens_total")
    generator = RemoteGenerator(vllm.endpoint(max_concurrency=8))
    cancel = threading.Event()
    watch_errors: list[BaseException] = []

    def cancel_once_generating() -> None:
        # Once the server has made a few tokens, not after a fixed time: a fast server could
        # finish a whole batch of eight before a timer fired. Whatever ends the watching, the
        # cancel is sent, so the generator never runs on unwatched; an error is reported below.
        try:
            deadline = time.monotonic() + 120
            while (metric(root, "vllm:generation_tokens_total") - tokens_before < 100
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        except BaseException as error:  # noqa: BLE001 - the test's thread reports it
            watch_errors.append(error)
        finally:
            cancel.set()

    threading.Thread(target=cancel_once_generating, daemon=True).start()
    with pytest.raises(Cancelled):
        generator.generate([f"Write a long story about ship number {i}." for i in range(16)],
                           GenerationConfig(max_new_tokens=400, min_new_tokens=400),
                           should_cancel=cancel.is_set)
    assert watch_errors == []
    assert generator.usage.requests < 16  # it stopped before the work was done
    # The server saw our clients go away and aborted their requests: it falls idle, having
    # generated less than the eight requests in flight would have needed to finish.
    deadline = time.monotonic() + 60
    while metric(root, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(root, "vllm:num_requests_running") == 0
    assert metric(root, "vllm:generation_tokens_total") - tokens_before < 8 * 400
    # And the generator is still usable afterwards.
    assert "Paris" in generator.generate(["What is the capital of France?"],
                                         GenerationConfig(max_new_tokens=12))[0]
