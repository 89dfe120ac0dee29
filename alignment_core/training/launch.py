"""`train()` spread over several processes of this host: `accelerate launch` running the CLI.

    result = train_processes(config, model_dir, pairs, sft, output_dir, checkpoint_dir,
                             num_processes=4, progress=..., should_cancel=...)

takes the arguments of `trainer.train` and returns its TrainResult, for a caller (the web app's
worker) that must not care whether one process trains or N: N GPUs of one machine, or N CPU
processes talking over gloo. It

1. writes the examples as JSON lines and the TrainConfig and paths as JSON into a folder in the
   checkpoint folder;
2. runs `accelerate launch --multi_gpu --num_processes N -m alignment_core.training.launched`
   on it (`--multi_gpu` is accelerate's name for torch's launcher; without GPUs its processes
   talk over gloo on the CPU, where accelerate's `--cpu` would need MPI);
3. follows the events file the main process writes: every step's report goes to `progress`,
   every log line to `log`, and when `should_cancel()` says so, a cancel file appears that all
   processes watch;
4. returns the run's result, or raises `Cancelled` (a checkpoint was written) or RuntimeError
   with the end of the processes' output.

The launched processes die with the caller (Linux: PR_SET_PDEATHSIG), so a worker killed
outright never leaves a run training on behind its back. One process needs no launcher:
`num_processes=1` calls `train()` directly.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import (
    Cancelled,
    PointwiseExample,
    PreferencePair,
    SFTExample,
    StepReport,
    TrainConfig,
    TrainResult,
)

POLL_SECONDS = 0.25


def _write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(asdict(row)) + "\n")
    return path


def _env(cpu: bool) -> dict[str, str]:
    """Ours, with this package importable in the launched processes wherever they start, and
    the CPU asked for when there is no GPU (accelerate would otherwise set up one process
    each: `distributed.check_world`)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def _free_port() -> int:
    """A port for the processes' rendezvous, so that two runs on one host do not collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# prctl, looked up now: the child of fork() should only call it, never load a library.
_PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGTERM when the parent dies (torch's launcher then
    stops its workers). Linux only; elsewhere the children outlive a killed parent."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def launch_command(num_processes: int, mixed_precision: str, module: str,
                   *args: str) -> list[str]:
    """The `accelerate launch` command line that runs `python -m module args` in N local
    processes (GPUs when there are, else the CPU over gloo)."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(num_processes), "--num_machines", "1",
        "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        "-m", module, *args,
    ]  # fmt: skip


def train_processes(
    config: TrainConfig,
    model_dir: Path | str,
    pairs: Sequence[PreferencePair],
    sft: Sequence[SFTExample],
    output_dir: Path | str,
    checkpoint_dir: Path | str,
    *,
    num_processes: int,
    progress: Callable[[StepReport], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    val_pairs: Sequence[PreferencePair] = (),
    val_sft: Sequence[SFTExample] = (),
    log: Callable[[str], None] | None = None,
    reference_cache: Path | str | None = None,
    pointwise: Sequence[PointwiseExample] = (),
) -> TrainResult:
    """Run `train()` with these arguments in `num_processes` processes (see the module doc)."""
    if num_processes < 1:
        raise ValueError("num_processes must be at least 1")
    if num_processes == 1:
        from .trainer import train

        return train(config, model_dir, pairs, sft, output_dir, checkpoint_dir,
                     progress=progress, should_cancel=should_cancel, val_pairs=val_pairs,
                     val_sft=val_sft, log=log, reference_cache=reference_cache,
                     pointwise=pointwise)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    # 1. The inputs, in a folder of this launch only.
    work = Path(tempfile.mkdtemp(prefix=".launch-", dir=checkpoint_dir))
    try:
        files = {}
        for name, rows in (("pairs", pairs), ("sft", sft), ("val_pairs", val_pairs),
                           ("val_sft", val_sft), ("pointwise", pointwise)):
            if rows:
                files[name] = _write_jsonl(work / f"{name}.jsonl", rows).name
        run = {"config": config.to_dict(), "model_dir": str(model_dir),
               "output_dir": str(output_dir), "checkpoint_dir": str(checkpoint_dir),
               "files": files,
               "reference_cache": None if reference_cache is None else str(reference_cache)}
        (work / "run.json").write_text(json.dumps(run), encoding="utf-8")
        command = launch_command(num_processes, config.mixed_precision,
                                 "alignment_core.training.launched", str(work))
        import torch

        cpu = config.device == "cpu" or not torch.cuda.is_available()
        # 2. and 3. Run them and follow their events until they exit.
        return _follow(command, _env(cpu), work, progress, should_cancel, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _follow(
    command: list[str],
    env: dict[str, str],
    work: Path,
    progress: Callable[[StepReport], None] | None,
    should_cancel: Callable[[], bool] | None,
    log: Callable[[str], None] | None,
) -> TrainResult:
    events, cancel, output = work / "events.jsonl", work / "cancel", work / "output.log"
    events.touch()
    outcome: dict[str, Any] = {}

    def dispatch(line: str) -> None:
        event = json.loads(line)
        kind = event.pop("kind")
        if kind == "step" and progress is not None:
            progress(StepReport(**event["report"]))
        elif kind == "log" and log is not None:
            log(event["message"])
        elif kind in ("result", "cancelled"):
            outcome.update(event, kind=kind)

    with open(output, "wb") as sink, open(events, encoding="utf-8") as reader:
        # preexec_fn calls one function found beforehand (no imports, no Python locks taken).
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True,
                                   preexec_fn=_die_with_parent)  # noqa: PLW1509
        try:
            pending = ""
            while True:
                finished = process.poll() is not None
                pending += reader.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    dispatch(line)
                if finished:
                    break
                if should_cancel is not None and not cancel.exists() and should_cancel():
                    cancel.touch()
                time.sleep(POLL_SECONDS)
        finally:
            if process.poll() is None:  # the caller failed or was interrupted: stop them
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    # 4. The outcome.
    if outcome.get("kind") == "cancelled":
        raise Cancelled(outcome["message"])
    if outcome.get("kind") != "result" or process.returncode != 0:
        tail = output.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise RuntimeError(f"the training processes exited with {process.returncode}:\n"
                           + "\n".join(tail))
    return TrainResult(adapter_dir=Path(outcome["adapter_dir"]), steps=outcome["steps"],
                       history=[StepReport(**report) for report in outcome["history"]],
                       metrics=outcome["metrics"])
