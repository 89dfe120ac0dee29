"""The preference phase's examples and the loss of one of its steps, for every objective.

Every objective trains on rows of the same shape, a prompt followed by two responses (see
`data.collate_pairs`), so the one-row packing, the reference table and cache, and step 1 scoring
its own reference work for all of them:

- pairwise objectives ("sigmoid", "robust", "ipo", "hinge"): a row is a preference pair, the
  chosen response then the rejected one;
- KTO: a row is one labelled example, its response then a *mismatched* response (the previous
  example's, as TRL pairs them), whose log-ratio estimates KTO's KL reference point. The
  examples are the point-wise ones plus both halves of every pair (TRL's
  `unpair_preference_dataset`: all chosen responses, desirable, then all rejected ones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .config import PointwiseExample, PreferencePair, TrainConfig
from .data import EncodedPair, encode_pairs
from .losses import kto_losses, kto_reference_point, pairwise_losses, weighted_mean


@dataclass
class PreferenceData:
    """The encoded rows of the preference phase, with what the loss needs beside the tokens."""

    rows: list[EncodedPair]
    weights: list[float]  # one per row: the example's label weight
    desirable: list[bool] | None  # KTO: each row's label; None for pairwise objectives

    def fingerprint(self) -> dict:
        """What a resumed run must share with the run that wrote the checkpoint, beyond tokens."""
        return {"weights": self.weights, "desirable": self.desirable}


def unpair(
    pairs: Sequence[PreferencePair], pointwise: Sequence[PointwiseExample] = ()
) -> list[PointwiseExample]:
    """KTO's examples: each pair's chosen response (desirable), then each rejected one, then the rest."""
    chosen = [PointwiseExample(p.prompt, p.chosen, True, p.weight) for p in pairs]
    rejected = [PointwiseExample(p.prompt, p.rejected, False, p.weight) for p in pairs]
    return chosen + rejected + list(pointwise)


def prepare(
    tokenizer,
    config: TrainConfig,
    pairs: Sequence[PreferencePair],
    pointwise: Sequence[PointwiseExample] = (),
) -> PreferenceData:
    """Tokenize the preference phase's examples for `config.objective`."""
    if config.objective != "kto":
        if pointwise:
            raise ValueError(
                f"Point-wise examples need the kto objective; {config.objective!r} learns from pairs"
            )
        rows = encode_pairs(tokenizer, list(pairs), config.max_length)
        return PreferenceData(rows, [float(p.weight) for p in pairs], None)
    examples = unpair(pairs, pointwise)
    if len(examples) < 2:
        raise ValueError("KTO needs at least two examples: its KL estimate pairs each with another's response")
    # Example i is scored together with example i-1's response (cyclically), TRL's mismatched pair.
    mismatched = [
        PreferencePair(prompt=e.prompt, chosen=e.response, rejected=examples[i - 1].response)
        for i, e in enumerate(examples)
    ]
    rows = encode_pairs(tokenizer, mismatched, config.max_length)
    return PreferenceData(
        rows, [float(e.weight) for e in examples], [bool(e.desirable) for e in examples]
    )


def step_loss(
    config: TrainConfig,
    data: PreferenceData,
    indices: list[int],
    first: torch.Tensor,
    second: torch.Tensor,
    reference: torch.Tensor,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of one step, and its reward accuracy and margin (detached) for the progress report.

    `first` and `second` are the policy's summed log-probs of each row's two responses, and
    `reference` the reference's, an (n, 2) tensor. Pairwise: the accuracy is the share of pairs
    whose chosen reward beats the rejected one, the margin their mean difference. KTO: the share
    of examples whose reward lies on their label's side of the reference point beta * z0, and the
    mean distance to it, signed so that the right side counts positive.
    """
    device = first.device
    weights = (
        torch.tensor([data.weights[i] for i in indices], device=device)
        if config.weight_examples
        else None
    )
    first_ratio, second_ratio = first - reference[:, 0], second - reference[:, 1]
    if data.desirable is None:
        lengths = [
            torch.tensor([len(getattr(data.rows[i], part)) for i in indices], device=device)
            for part in ("chosen_ids", "rejected_ids")
        ]
        losses = pairwise_losses(
            config.objective, first_ratio, second_ratio, config.beta, config.label_smoothing,
            *lengths,
        )
        rewards = config.beta * (first_ratio - second_ratio).detach()
    else:
        desirable = torch.tensor([data.desirable[i] for i in indices], device=device)
        kl = kto_reference_point(second, reference[:, 1], reduce)
        losses = kto_losses(first, reference[:, 0], desirable, kl, config.beta)
        sign = desirable.float() * 2 - 1
        rewards = sign * config.beta * (first_ratio - kl).detach()
    return weighted_mean(losses, weights), (rewards > 0).float().mean(), rewards.mean()
