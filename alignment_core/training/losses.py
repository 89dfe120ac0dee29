"""Log-probabilities of responses, and the SFT and DPO losses built from them.

The expensive part of scoring a response with a 49k-token vocabulary is the output projection:
projecting every position of every padded sequence costs more than the whole transformer on a
short prompt. `ResponseScorer` therefore runs the transformer body, keeps only the hidden states
that predict a response token, and projects just those through the output layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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

    def forward(self, input_ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
        lm = self.causal_lm()
        body = getattr(lm, lm.base_model_prefix)
        # 1. Run the transformer body. No attention mask: batches are right-padded (see data.collate).
        hidden = body(input_ids=input_ids, use_cache=False).last_hidden_state
        # 2. Position t predicts token t+1: keep the positions whose next token is a response token.
        targets_mask = response_mask[:, 1:]
        picked = hidden[:, :-1][targets_mask]  # (n_response_tokens, hidden)
        targets = input_ids[:, 1:][targets_mask]
        # 3. Project only those positions and take the log-prob of the actual next token.
        logits = lm.get_output_embeddings()(picked).float()
        token_logps = torch.gather(logits.log_softmax(-1), 1, targets[:, None]).squeeze(1)
        # 4. Sum per sequence.
        rows = targets_mask.nonzero()[:, 0]
        sums = torch.zeros(input_ids.shape[0], dtype=token_logps.dtype, device=token_logps.device)
        return sums.index_add(0, rows, token_logps)


def sft_loss(response_logps: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per response token over the whole batch."""
    num_tokens = response_mask[:, 1:].sum().clamp(min=1)
    return -response_logps.sum() / num_tokens


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
