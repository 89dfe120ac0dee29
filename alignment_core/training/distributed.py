"""Data-parallel training over several processes (`accelerate launch`): the parts that differ
from one process.

With N processes, each optimizer step takes a global batch of N x batch_size examples, each
process scoring its share. DistributedDataParallel averages the processes' gradients, so for a
step to equal one process's step over the whole global batch, each process's loss must be its
examples' *sum* over the global count, times N (not its own mean): the shares can differ in
size (SFT counts response tokens, and a short last batch leaves a process with fewer examples
or none). `step_weight` is that correction; with one process it is exactly 1.0, so a
single-process run computes bit for bit what it did before.
"""

from __future__ import annotations

import math
import os

import torch


def check_world(world: int) -> None:
    """Refuse to train when the launcher started N processes but accelerate set up one each.

    That happens on a machine without GPUs unless the CPU is asked for (`--device cpu`, or
    ACCELERATE_USE_CPU=1): every process would then train the whole run alone, and all of them
    would write the same adapter and checkpoints.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and world != launched:
        raise RuntimeError(
            f"launched as {launched} processes, but accelerate set up {world}: on a machine "
            "without GPUs, train on the CPU (--device cpu, or ACCELERATE_USE_CPU=1)")


def local_share(
    order: list[int], step: int, batch_size: int, rank: int, world: int
) -> tuple[list[int], bool]:
    """This process's example indices for one optimizer step, and whether they count.

    The global batch of the step is `order[start : start + batch_size * world]`; process `rank`
    takes every `world`-th example of it. The last batch of an epoch may be too short to give
    every process an example, but every process must take part in each step (the gradient
    all-reduce waits for all of them): a process left without one scores a stand-in example
    whose loss is weighted zero.
    """
    per_epoch = math.ceil(len(order) / (batch_size * world))
    start = (step % per_epoch) * batch_size * world
    global_batch = order[start : start + batch_size * world]
    local = global_batch[rank::world]
    return (local, True) if local else (global_batch[:1], False)


def step_weight(accelerator, counted: int, device: torch.device) -> float:
    """The factor that turns this process's mean over its `counted` units into its part of the
    global mean: `counted * N / total`, where `total` sums `counted` over the N processes.

    Multiply the loss (and any per-example mean it reports) by it: DDP's gradient average and
    `accelerator.reduce(..., "mean")` then give the mean over the whole global batch. `counted`
    is what the mean divides by (rows of the preference phase, response tokens for SFT), zero
    for a stand-in.
    """
    world = accelerator.num_processes
    if world == 1:
        return 1.0 if counted else 0.0
    total = int(accelerator.reduce(torch.tensor(counted, device=device), reduction="sum"))
    return counted * world / total


def threads_per_process(requested: int | None, world: int) -> int:
    """CPU threads for torch in each process: the requested number, else the host's cores
    divided among the processes on it (each using every core would oversubscribe them, which
    slows torch down many times over)."""
    if requested:
        return requested
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return max(1, (os.cpu_count() or 1) // max(local, 1))
