"""Log-probabilities of responses, and the SFT and preference losses built from them.

Three things make scoring cheap on a CPU. The output projection over a 49k-token vocabulary costs
more than the whole transformer on a short prompt, so `ResponseScorer` projects only the hidden
states that predict a response token. Those projections go through `token_logps`, which keeps
one (tokens, vocabulary) buffer where autograd's log_softmax and gather keep three. And a
preference pair is one row (see `data.collate_pairs`): the prompt is computed once for both
responses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Batch

VOCAB_CHUNK = 8192  # columns of the output projection computed per matrix product


class _TokenLogProbs(torch.autograd.Function):
    """log softmax(hidden @ weight.T)[target] per row, with a hand-written backward.

    The gradient of a token's log-prob with respect to the logits is onehot(target) - softmax,
    so the forward turns its logits buffer into the softmax in place and saves only that; the
    backward turns the same buffer into the logits' gradient in place. Autograd's
    log_softmax + gather would hold the logits, the log-softmax and a zero-filled gradient of
    the same (tokens, vocabulary) size, 800 MB each for 4k response tokens.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows, vocab = hidden.shape[0], weight.shape[0]
        logits = torch.empty((rows, vocab), dtype=torch.float32, device=hidden.device)
        # Column chunks: a (chunk, hidden) slice of the weight stays in cache, which makes the
        # product faster on CPUs than one call over the whole vocabulary.
        for start in range(0, vocab, VOCAB_CHUNK):
            end = min(start + VOCAB_CHUNK, vocab)
            logits[:, start:end] = F.linear(hidden, weight[start:end]).float()
        lse = torch.logsumexp(logits, dim=-1)
        picked = logits.gather(1, targets[:, None]).squeeze(1) - lse
        if any(ctx.needs_input_grad[:2]):
            probs = logits.sub_(lse[:, None]).exp_()
            ctx.save_for_backward(hidden, weight, targets, probs)
            ctx.consumed = False
        return picked

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        if ctx.consumed:
            raise RuntimeError("token_logps reuses its buffer: backward can run only once")
        ctx.consumed = True
        hidden, weight, targets, probs = ctx.saved_tensors
        # d logp[target] / d logits = onehot(target) - softmax, scaled by the incoming gradient.
        grad_logits = probs.mul_(-grad[:, None])
        grad_logits.scatter_add_(1, targets[:, None], grad[:, None])
        grad_logits = grad_logits.to(hidden.dtype)
        grad_hidden = grad_logits @ weight.to(hidden.dtype) if ctx.needs_input_grad[0] else None
        grad_weight = (
            (grad_logits.t() @ hidden).to(weight.dtype) if ctx.needs_input_grad[1] else None
        )
        return grad_hidden, grad_weight, None


def token_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The log-prob of `targets[k]` under the distribution softmax(weight @ hidden[k]).

    hidden: (k, d); weight: (vocabulary, d), an output projection without bias; targets: (k,).
    Equal to `F.linear(hidden, weight).float().log_softmax(-1).gather(1, targets[:, None])`
    (and so are the gradients), in a third of the memory.
    """
    return _TokenLogProbs.apply(hidden, weight, targets)


class ResponseScorer(nn.Module):
    """Wrap a (peft) causal LM: forward returns the summed log-prob of each sequence's response.

    It is an `nn.Module` so that `accelerator.prepare` can wrap it for distributed data parallel
    training: the gradient all-reduce hooks only run when the forward goes through the wrapper.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model  # a peft.PeftModel (or a plain causal LM)

    def causal_lm(self) -> nn.Module:
        """The transformers model underneath peft (its LoRA layers are injected in place)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def forward(self, batch: Batch) -> torch.Tensor:
        """The summed log-prob of each scored sequence of `batch`: a (num_sequences,) tensor."""
        lm = self.causal_lm()
        body = getattr(lm, lm.base_model_prefix)
        # 1. Run the transformer body. Without a mask the rows are right-padded and causal.
        hidden = body(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            attention_mask=batch.attention_mask,
            use_cache=False,
        ).last_hidden_state
        # 2. Keep the hidden states that predict a scored token (position t predicts t + 1).
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.predictors)
        # 3. Project only those positions and take the log-prob of the actual next token.
        head = lm.get_output_embeddings()
        if getattr(head, "bias", None) is None:
            logps = token_logps(picked, head.weight, batch.targets)
        else:  # no model we train has one, but a head with a bias is scored the plain way
            logps = head(picked).float().log_softmax(-1).gather(1, batch.targets[:, None])[:, 0]
        # 4. Sum per sequence.
        sums = torch.zeros(batch.num_sequences, dtype=logps.dtype, device=logps.device)
        return sums.index_add(0, batch.segments, logps)


def sft_loss(response_logps: torch.Tensor, num_targets: int) -> torch.Tensor:
    """Mean negative log-likelihood per response token over the whole batch."""
    return -response_logps.sum() / max(num_targets, 1)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """mean(weight * loss): a weight below 1 makes an uncertain label count for less.

    Not normalised by the sum of the weights: a batch of low-confidence labels should move the
    model less than a batch of certain ones, not just as much. Without weights: the plain mean.
    """
    if weights is None:
        return losses.mean()
    return (weights.to(losses) * losses).mean()


def pairwise_losses(
    objective: str,
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-pair loss of a pairwise objective, as TRL 1.16's `DPOTrainer` computes it.

    The log-ratios are log pi(y|x) - log pi_ref(y|x) summed over the response tokens; with
    delta = chosen - rejected and epsilon = label_smoothing (the assumed share of flipped labels):

    - "sigmoid" (DPO): -log sigmoid(beta delta). With epsilon > 0 it is conservative DPO
      (Mitchell 2023): the expected DPO loss when each label is flipped with probability epsilon,
      (1 - epsilon) * DPO(chosen over rejected) + epsilon * DPO(rejected over chosen). TRL 1.16
      dropped epsilon from its "sigmoid" loss, so that case is checked against TRL's sigmoid loss
      on both label orders.
    - "robust" (Chowdhury 2024): an unbiased estimate of the clean DPO loss under that noise,
      ((1 - epsilon) * DPO(delta) - epsilon * DPO(-delta)) / (1 - 2 epsilon).
    - "ipo" (Azar 2023): (delta' - 1 / (2 beta))^2, where delta' uses log-ratios averaged per
      response token (TRL's normalisation, confirmed by the IPO authors); needs the lengths.
    - "hinge" (SLiC, Zhao 2023): max(0, 1 - beta delta).
    """
    delta = chosen_logratios - rejected_logratios
    if objective == "sigmoid":
        if label_smoothing == 0.0:
            return -F.logsigmoid(beta * delta)
        return -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(
            -beta * delta
        )
    if objective == "robust":
        clean = -(1 - label_smoothing) * F.logsigmoid(beta * delta)
        flipped = -label_smoothing * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1 - 2 * label_smoothing)
    if objective == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("IPO needs the number of tokens of each response")
        chosen_avg = chosen_logratios / chosen_lengths.to(delta).clamp(min=1.0)
        rejected_avg = rejected_logratios / rejected_lengths.to(delta).clamp(min=1.0)
        return (chosen_avg - rejected_avg - 1 / (2 * beta)) ** 2
    if objective == "hinge":
        return torch.relu(1 - beta * delta)
    raise ValueError(f"{objective!r} is not a pairwise objective")


def kto_reference_point(
    policy_kl: torch.Tensor,
    reference_kl: torch.Tensor,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """KTO's reference point z0: an estimate of KL(pi || pi_ref), as TRL estimates it.

    `policy_kl` and `reference_kl` score mismatched (prompt, response) pairs, a prompt with
    another example's response, under the policy and the reference; z0 is the batch mean of
    their difference, averaged over processes by `reduce` (data parallel training), clamped at
    0, and detached: it shifts the loss but no gradient flows through it.
    """
    kl = (policy_kl - reference_kl).mean().detach()
    if reduce is not None:
        kl = reduce(kl)
    return kl.clamp(min=0)


def kto_losses(
    policy: torch.Tensor,
    reference: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """The per-example KTO loss (Ethayarajh 2024, eq. 7, TRL's "kto" with unit class weights).

    With r = log pi(y|x) - log pi_ref(y|x): a desirable response loses 1 - sigmoid(beta (r - z0)),
    an undesirable one 1 - sigmoid(beta (z0 - r)). The loss saturates both ways, so a label the
    model confidently disagrees with (perhaps a wrong one) pulls on it less and less.
    """
    logratios = policy - reference
    signed = torch.where(desirable.bool(), logratios - kl, kl - logratios)
    return 1 - torch.sigmoid(beta * signed)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sigmoid DPO loss (Rafailov et al. 2023) and the implicit rewards of both responses.

    reward = beta * (log pi(y|x) - log pi_ref(y|x)); loss = -log sigmoid(reward_chosen - reward_rejected).
    """
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()
