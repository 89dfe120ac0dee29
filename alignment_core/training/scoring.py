"""The passes that score without training: the DPO reference, and the validation figures.

`reference_table` gives every pair's reference scores: from the reference cache when it has
them, else from one pass of the reference model (the base model with the adapter disabled, or
the current model after SFT), in batches of similar length. `fill_from_step_one` completes the
table with step 1's own scores, and the validation helpers measure SFT loss and DPO reward
accuracy on held-out examples.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection
from typing import Any

import torch

from .config import Cancelled
from .data import EncodedExample, EncodedPair, collate_pairs, collate_sft, epoch_order
from .distributed import local_share
from .losses import ResponseScorer, dpo_loss
from .reference_cache import ReferenceCache

Autocast = Callable[[], contextlib.AbstractContextManager]


@torch.inference_mode()
def score_pairs(
    scorer: ResponseScorer,
    pairs: list[EncodedPair],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    should_cancel: Callable[[], bool] | None = None,
    autocast: Autocast = contextlib.nullcontext,
) -> torch.Tensor:
    """Summed response log-probs of every pair, as an (n, 2) tensor of (chosen, rejected).

    Pairs of similar length are scored together (the order does not matter here), so a batch
    pads little when the lengths vary, as real prompts and answers do.
    """
    out = torch.zeros((len(pairs), 2))
    by_length = sorted(
        range(len(pairs)),
        key=lambda i: len(pairs[i].prompt_ids) + len(pairs[i].chosen_ids) + len(pairs[i].rejected_ids),
    )
    for start in range(0, len(pairs), batch_size):
        if should_cancel is not None and should_cancel():
            raise Cancelled("Cancelled while scoring the reference")
        rows = by_length[start : start + batch_size]
        batch = collate_pairs([pairs[i] for i in rows], pad_id)
        # The same precision as the training steps, so that at step 1 policy == reference exactly.
        with autocast():
            logps = scorer(batch.to(device)).float().cpu()
        out[rows] = torch.stack(logps.split(len(rows)), dim=1)
    return out  # an inference tensor: callers clone it outside inference mode


def reference_logps(
    scorer: ResponseScorer,
    pairs: list[EncodedPair],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    with_adapter: bool,
    should_cancel: Callable[[], bool] | None = None,
    autocast: Autocast = contextlib.nullcontext,
) -> torch.Tensor:
    """Score pairs with the reference: the base model (adapter disabled) or the current model."""
    scorer.eval()
    try:
        with contextlib.nullcontext() if with_adapter else scorer.model.disable_adapter():
            scores = score_pairs(
                scorer, pairs, pad_id, batch_size, device, should_cancel, autocast
            )
    finally:
        scorer.train()
    # Outside inference mode a clone is an ordinary tensor, which may be updated in place and
    # meet autograd later.
    return scores.clone()


@torch.inference_mode()
def sft_val_loss(
    scorer: ResponseScorer,
    examples: list[EncodedExample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    autocast: Autocast = contextlib.nullcontext,
) -> float:
    scorer.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate_sft(examples[start : start + batch_size], pad_id)
        with autocast():
            logps = scorer(batch.to(device))
        total -= float(logps.sum())
        tokens += len(batch.targets)
    scorer.train()
    return total / max(tokens, 1)


def reference_table(
    scorer: ResponseScorer,
    pairs: list[EncodedPair],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    with_adapter: bool,
    cache: ReferenceCache | None,
    skip: Collection[int] = (),
    should_cancel: Callable[[], bool] | None = None,
    autocast: Autocast = contextlib.nullcontext,
    say: Callable[[str], None] = lambda message: None,
    write: bool = True,
) -> torch.Tensor:
    """The reference scores of every pair as an (n, 2) tensor; NaN for the pairs in `skip`.

    Pairs found in `cache` are not scored again, and new scores go into it (when `write`).
    """
    table = torch.full((len(pairs), 2), float("nan"))
    cached = cache.get(pairs) if cache is not None else {}
    for index, scores in cached.items():
        table[index] = torch.tensor(scores)
    skip = set(skip)
    todo = [i for i in range(len(pairs)) if i not in skip and i not in cached]
    if cache is not None:
        say(f"Scoring {len(todo)} pairs with the reference model ({len(cached)} from the cache)")
    else:
        say(f"Scoring {len(todo)} pairs with the reference model")
    if todo:
        scores = reference_logps(
            scorer, [pairs[i] for i in todo], pad_id, batch_size, device, with_adapter,
            should_cancel, autocast,
        )
        table[todo] = scores
        if cache is not None and write:
            cache.put([pairs[i] for i in todo], scores.tolist())
    return table


def dpo_val_metrics(
    scorer: ResponseScorer,
    pairs: list[EncodedPair],
    reference: torch.Tensor,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    beta: float,
    autocast: Autocast = contextlib.nullcontext,
) -> dict[str, float]:
    policy = reference_logps(
        scorer, pairs, pad_id, batch_size, device, with_adapter=True, autocast=autocast
    )
    loss, chosen, rejected = dpo_loss(
        policy[:, 0], policy[:, 1], reference[:, 0], reference[:, 1], beta
    )
    return {
        "val_dpo_loss": float(loss),
        "val_reward_accuracy": float((chosen > rejected).float().mean()),
        "val_reward_margin": float((chosen - rejected).mean()),
    }


def fill_from_step_one(
    table: torch.Tensor,
    indices: list[int],
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    pairs: list[EncodedPair],
    cache: ReferenceCache | None,
) -> None:
    """Step 1's scores are the reference's: fill the rows of `table` the reference pass left NaN."""
    scores = torch.stack([chosen.detach(), rejected.detach()], dim=1).cpu()
    missing = [k for k, i in enumerate(indices) if math.isnan(float(table[i, 0]))]
    if not missing:
        return
    table[[indices[k] for k in missing]] = scores[missing]
    if cache is not None:
        cache.put([pairs[indices[k]] for k in missing], scores[missing].tolist())


def final_metrics(
    core: ResponseScorer,
    history: list,
    losses: dict[str, float],
    val_sft: list,
    val_pairs: list,
    val_reference: torch.Tensor | None,
    *,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    beta: float,
    autocast: Autocast,
    cache: ReferenceCache | None = None,
    write: bool = True,
) -> dict[str, float]:
    """A run's closing metrics: the last losses and training reward figures, then validation
    loss and DPO reward accuracy on the held-out examples. After SFT alone there is no DPO
    reference yet, so the held-out pairs are compared with the base model."""
    metrics: dict[str, float] = {"final_loss": history[-1].loss if history else float("nan")}
    metrics.update({f"{name}_final_loss": value for name, value in losses.items()})
    dpo_history = [r for r in history if r.phase == "dpo"]
    if dpo_history:
        metrics["train_reward_accuracy"] = dpo_history[-1].reward_accuracy
        metrics["train_reward_margin"] = dpo_history[-1].reward_margin
    if val_sft:
        metrics["val_loss"] = sft_val_loss(core, val_sft, pad_id, batch_size, device, autocast)
    if val_pairs:
        if val_reference is None:
            val_reference = reference_table(core, val_pairs, pad_id, batch_size, device,
                                            with_adapter=False, cache=cache, autocast=autocast,
                                            write=write)
        metrics.update(dpo_val_metrics(core, val_pairs, val_reference, pad_id, batch_size,
                                       device, beta, autocast))
        metrics.setdefault("val_loss", metrics["val_dpo_loss"])
    return metrics


def dpo_reference(
    core: ResponseScorer,
    pairs: list[EncodedPair],
    val_pairs: list[EncodedPair],
    *,
    phase_index: int,
    config: Any,
    rank: int,
    world: int,
    pad_id: int,
    device: torch.device,
    cache: ReferenceCache | None,
    autocast: Autocast,
    write: bool,
    should_cancel: Callable[[], bool] | None,
    say: Callable[[str], None],
) -> tuple[dict[str, torch.Tensor | None], bool, ReferenceCache | None]:
    """The DPO phase's reference scores of the training and validation pairs; whether step 1
    scores its own pairs (then they are left out here); and the cache the phase may use.

    The reference is the model the phase starts from: the base model (adapter disabled) first,
    the SFT model after SFT. Step 1's policy is still the reference (a fresh adapter adds exactly
    zero; after SFT, without dropout, the policy is the SFT model), so step 1's own forward pass
    scores its pairs. The cache holds base-model scores only.
    """
    with_adapter = phase_index > 0
    self_reference = world == 1 and (phase_index == 0 or config.lora.dropout == 0)
    first_order = epoch_order(len(pairs), config.seed, phase_index, 0)
    step_one = (local_share(first_order, 0, config.batch_size, rank, world)[0]
                if self_reference else [])
    phase_cache = None if with_adapter else cache
    shared = {"pad_id": pad_id, "batch_size": config.batch_size, "device": device,
              "with_adapter": with_adapter, "cache": phase_cache, "autocast": autocast,
              "write": write}
    reference = {
        "train": reference_table(core, pairs, skip=step_one, should_cancel=should_cancel,
                                 say=say, **shared),
        "val": reference_table(core, val_pairs, **shared) if val_pairs else None,
    }
    return reference, self_reference, phase_cache
