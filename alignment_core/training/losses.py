"""Log-probabilities of responses, and the SFT and DPO losses built from them.

Three things make scoring cheap on a CPU. The output projection over a 49k-token vocabulary costs
more than the whole transformer on a short prompt, so `ResponseScorer` projects only the hidden
states that predict a response token. Those projections go through `token_logps`, which keeps
one (tokens, vocabulary) buffer where autograd's log_softmax and gather keep three. And a
preference pair is one row (see `data.collate_pairs`): the prompt is computed once for both
responses.
"""

from __future__ import annotations

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
