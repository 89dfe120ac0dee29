"""Log-probabilities of responses, and the SFT and DPO losses built from them.

Two things make scoring cheap on a CPU. The output projection over a 49k-token vocabulary costs
more than the whole transformer on a short prompt, so `ResponseScorer` projects only the hidden
states that predict a response token. And a preference pair is one row (see
`data.collate_pairs`): the prompt is computed once for both responses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import Batch


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
        logits = lm.get_output_embeddings()(picked).float()
        token_logps = torch.gather(logits.log_softmax(-1), 1, batch.targets[:, None]).squeeze(1)
        # 4. Sum per sequence.
        sums = torch.zeros(batch.num_sequences, dtype=token_logps.dtype, device=token_logps.device)
        return sums.index_add(0, batch.segments, token_logps)


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
