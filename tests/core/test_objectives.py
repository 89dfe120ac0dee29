"""Our preference objectives against TRL's own loss code, on the same log-probabilities.

TRL computes its losses inside `DPOTrainer._compute_loss` and `KTOTrainer._compute_loss`, right
after one forward pass of the model. These tests run those very methods (nothing of TRL is
copied) on a trainer object that holds only the settings the loss reads, with a real
`Accelerator`, and hand them a stand-in "model" whose output is a fixed tensor of per-token
log-probabilities. That tensor requires grad, so the gradient TRL's loss sends to each response
can be compared with the gradient our loss sends to the same summed log-prob.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from alignment_core.training.losses import (
    kto_losses,
    kto_reference_point,
    pairwise_losses,
    weighted_mean,
)

BETA = 0.1
N = 6  # pairs (or KTO examples) per batch
WIDTH = 9  # tokens per row: 3 prompt tokens and up to 6 completion tokens


class FixedLogProbs:
    """Stands in for the model in TRL's loss: its output is given per-token log-probs."""

    training = True

    def __init__(self, outputs: dict[int, torch.Tensor]) -> None:
        self.outputs = outputs  # id(input_ids tensor) -> per-token log-probs (rows, WIDTH - 1)

    def __call__(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        log_probs = self.outputs[id(input_ids)]
        zeros = torch.zeros(log_probs.shape)
        return SimpleNamespace(
            log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
        )


def trl_trainer(cls, **settings):
    """A TRL trainer object with only what `_compute_loss` reads (no model, data or optimizer)."""
    from accelerate import Accelerator

    trainer = object.__new__(cls)
    trainer.accelerator = Accelerator(cpu=True)
    trainer.aux_loss_enabled = False
    trainer.precompute_ref_logps = True
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer._total_train_tokens = 0
    trainer._tp_size = 1
    trainer.beta = BETA
    for name, value in settings.items():
        setattr(trainer, name, value)
    return trainer


def completion_rows(lengths: list[int], generator: torch.Generator):
    """Masks and per-token log-probs for rows whose completions have the given lengths."""
    mask = torch.zeros(len(lengths), WIDTH, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, 3 : 3 + length] = 1
    # Token t+1's log-prob sits at position t of the model's output (as TRL shifts it).
    per_token = -torch.rand(len(lengths), WIDTH - 1, generator=generator) * 3 * mask[:, 1:]
    return mask, per_token.requires_grad_()


def random_batch(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, WIDTH - 3, (2 * N,), generator=generator).tolist()
    mask, per_token = completion_rows(lengths, generator)
    # References a few nats away from the policy, so rewards of both signs and sizes occur.
    reference = per_token.detach().sum(1) + torch.randn(2 * N, generator=generator) * 8
    return {"mask": mask, "per_token": per_token, "reference": reference, "lengths": lengths}


def trl_dpo(batch: dict, loss_type: str, label_smoothing: float = 0.0, swap: bool = False):
    """TRL's DPO loss on `batch`, and its gradient with respect to each sequence's log-prob."""
    from trl import DPOTrainer

    order = list(range(N, 2 * N)) + list(range(N)) if swap else list(range(2 * N))
    per_token = batch["per_token"].detach()[order].clone().requires_grad_()
    mask = batch["mask"][order]
    input_ids = torch.ones(2 * N, WIDTH, dtype=torch.long)
    trainer = trl_trainer(
        DPOTrainer,
        model=FixedLogProbs({}),
        ld_alpha=None,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        label_smoothing=label_smoothing,
        use_weighting=False,
    )
    reference = batch["reference"][order]
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "completion_mask": mask,
        "ref_chosen_logps": reference[:N],
        "ref_rejected_logps": reference[N:],
    }
    loss = trainer._compute_loss(FixedLogProbs({id(input_ids): per_token}), inputs, False)
    loss.backward()
    # Every token of a sequence gets the gradient of the sequence's summed log-prob.
    first_token = per_token.grad[torch.arange(2 * N), 2]
    grad = torch.empty(2 * N)
    grad[order] = first_token
    return loss.detach(), grad


def ours_pairwise(batch: dict, objective: str, label_smoothing: float = 0.0, weights=None):
    logps = batch["per_token"].detach().sum(1).requires_grad_()
    reference, lengths = batch["reference"], torch.tensor(batch["lengths"])
    losses = pairwise_losses(
        objective,
        logps[:N] - reference[:N],
        logps[N:] - reference[N:],
        BETA,
        label_smoothing,
        lengths[:N],
        lengths[N:],
    )
    loss = weighted_mean(losses, weights)
    loss.backward()
    return loss.detach(), logps.grad


@pytest.mark.parametrize(
    "objective, label_smoothing",
    [("sigmoid", 0.0), ("robust", 0.1), ("robust", 0.4), ("ipo", 0.0), ("hinge", 0.0)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_objectives_match_trl_in_value_and_gradient(objective, label_smoothing, seed):
    batch = random_batch(seed)
    trl_loss, trl_grad = trl_dpo(batch, objective, label_smoothing)
    loss, grad = ours_pairwise(batch, objective, label_smoothing)

    assert float(loss) == pytest.approx(float(trl_loss), rel=1e-5, abs=1e-7)
    torch.testing.assert_close(grad, trl_grad, rtol=1e-5, atol=1e-8)
    assert grad.abs().sum() > 0  # the comparison is not between two zero gradients


@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_conservative_dpo_is_trl_sigmoid_averaged_over_both_label_orders(label_smoothing, seed):
    # Conservative DPO is the expected DPO loss when a label is flipped with probability
    # epsilon; TRL 1.16's "sigmoid" has no epsilon, so the expectation is taken over its loss.
    batch = random_batch(seed)
    kept_loss, kept_grad = trl_dpo(batch, "sigmoid")
    flipped_loss, flipped_grad = trl_dpo(batch, "sigmoid", swap=True)
    loss, grad = ours_pairwise(batch, "sigmoid", label_smoothing)

    expected = (1 - label_smoothing) * kept_loss + label_smoothing * flipped_loss
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    torch.testing.assert_close(
        grad, (1 - label_smoothing) * kept_grad + label_smoothing * flipped_grad, rtol=1e-5, atol=1e-8
    )


def trl_kto(batch: dict):
    """TRL's KTO loss on `batch`; the examples' KL rows are the mismatched responses."""
    from trl import KTOTrainer

    input_ids = torch.ones(2 * N, WIDTH, dtype=torch.long)
    kl_ids = torch.ones(2 * N, WIDTH, dtype=torch.long)
    kl_mask, kl_per_token = completion_rows(batch["kl_lengths"], torch.Generator().manual_seed(7))
    kl_per_token = kl_per_token.detach()
    model = FixedLogProbs({id(input_ids): batch["per_token"], id(kl_ids): kl_per_token})
    trainer = trl_trainer(
        KTOTrainer,
        model=model,
        calculate_KL=True,
        loss_type="kto",
        desirable_weight=1.0,
        undesirable_weight=1.0,
    )
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "completion_mask": batch["mask"],
        "KL_input_ids": kl_ids,
        "KL_attention_mask": torch.ones_like(kl_ids),
        "KL_completion_mask": kl_mask,
        "label": torch.tensor(batch["desirable"]),
        "ref_logps": batch["reference"],
        "ref_KL_logps": batch["kl_reference"],
    }
    loss = trainer._compute_loss(model, inputs, False)
    loss.backward()
    return loss.detach(), batch["per_token"].grad[:, 2].clone(), kl_per_token.sum(1), trainer


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kl_shift", [-30.0, 0.0, 30.0])  # negative: z0 is clamped to 0
def test_kto_matches_trl_in_value_gradient_and_reference_point(seed, kl_shift):
    batch = random_batch(seed)
    generator = torch.Generator().manual_seed(seed + 100)
    batch["desirable"] = (torch.rand(2 * N, generator=generator) > 0.4).tolist()
    batch["kl_lengths"] = torch.randint(1, WIDTH - 3, (2 * N,), generator=generator).tolist()
    _, kl_policy = completion_rows(batch["kl_lengths"], torch.Generator().manual_seed(7))
    # z0 estimates the mean of (policy - reference) over the mismatched rows: about kl_shift.
    batch["kl_reference"] = kl_policy.detach().sum(1) - kl_shift + torch.randn(
        2 * N, generator=generator
    )
    trl_loss, trl_grad, kl_logps, trainer = trl_kto(batch)

    logps = batch["per_token"].detach().sum(1).requires_grad_()
    z0 = kto_reference_point(kl_logps, batch["kl_reference"])
    losses = kto_losses(logps, batch["reference"], torch.tensor(batch["desirable"]), z0, BETA)
    loss = weighted_mean(losses, None)
    loss.backward()
    loss = loss.detach()

    assert float(z0) == pytest.approx(trainer._metrics["train"]["kl"][-1], rel=1e-6, abs=1e-7)
    if kl_shift:
        assert (float(z0) == 0.0) == (kl_shift < 0)
    assert float(loss) == pytest.approx(float(trl_loss), rel=1e-5, abs=1e-7)
    torch.testing.assert_close(logps.grad, trl_grad, rtol=1e-5, atol=1e-8)
    assert logps.grad.abs().sum() > 0


def test_a_weight_scales_its_example_and_zero_removes_it():
    batch = random_batch(3)
    weights = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.25, 0.0])
    _, grad = ours_pairwise(batch, "sigmoid", weights=weights)
    _, plain = ours_pairwise(batch, "sigmoid")

    # Pair i's chosen is sequence i and its rejected one N + i: both scale with its weight.
    torch.testing.assert_close(grad, plain * weights.repeat(2))
    assert grad[1] == 0 and grad[N + 1] == 0 and plain[1] != 0


def test_robust_dpo_undoes_known_noise_in_expectation():
    # Robust DPO is unbiased: averaged over the label being flipped with probability epsilon, it
    # equals the clean DPO loss (Chowdhury et al. 2024, lemma 3.1).
    delta = torch.linspace(-40, 40, 11)
    epsilon = 0.3
    kept = pairwise_losses("robust", delta, torch.zeros(11), BETA, epsilon)
    flipped = pairwise_losses("robust", -delta, torch.zeros(11), BETA, epsilon)
    clean = pairwise_losses("sigmoid", delta, torch.zeros(11), BETA)
    torch.testing.assert_close((1 - epsilon) * kept + epsilon * flipped, clean)
    assert float(pairwise_losses("sigmoid", torch.zeros(1), torch.zeros(1), BETA)) == pytest.approx(
        math.log(2)
    )


def test_an_unknown_objective_and_ipo_without_lengths_are_refused():
    with pytest.raises(ValueError, match="not a pairwise objective"):
        pairwise_losses("kto", torch.zeros(1), torch.zeros(1), BETA)
    with pytest.raises(ValueError, match="number of tokens"):
        pairwise_losses("ipo", torch.zeros(1), torch.zeros(1), BETA)
