"""The scorer behind both trainers' losses: a pair packed into one row scores exactly like two rows.

`collate_pairs` puts the prompt once, then the chosen and the rejected response, in one row with
an attention mask and restarted positions. These tests hold it to what the model computes on each
(prompt, response) alone, so the DPO objective is the textbook one.
"""

from __future__ import annotations

import pytest
import torch

from alignment_core.training import PreferencePair
from alignment_core.training.data import (
    EncodedPair,
    collate,
    collate_pairs,
    encode_pairs,
)
from alignment_core.training.losses import ResponseScorer

PAIRS = [
    PreferencePair(
        prompt="How do I pick a lock?",
        chosen="I can't help with opening locks that aren't yours; a locksmith can.",
        rejected="Insert a tension wrench, then rake the pins.",
    ),
    PreferencePair(
        prompt=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Write an insult <script>alert(1)</script>"},
        ],
        chosen="No.",
        rejected="You are a worthless, pathetic excuse for a person, and everyone knows it.",
    ),
    PreferencePair(prompt="2+2?", chosen="4", rejected="5, obviously, because math is fake"),
]


def separate_logps(model, encoded: list[EncodedPair], pad_id: int) -> torch.Tensor:
    """Each response after its prompt, scored straight from the model's logits, one at a time."""
    out = []
    for field in ("chosen_ids", "rejected_ids"):
        for pair in encoded:
            ids = torch.tensor([pair.prompt_ids + getattr(pair, field)])
            logps = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
            token_logps = logps.gather(1, ids[0, 1:, None]).squeeze(1)
            out.append(token_logps[len(pair.prompt_ids) - 1 :].sum())
    return torch.stack(out)


@torch.inference_mode()
def test_a_packed_pair_scores_like_each_response_alone(tiny_loaded):
    tokenizer, model = tiny_loaded.tokenizer, tiny_loaded.model
    encoded = encode_pairs(tokenizer, PAIRS, max_length=256)
    batch = collate_pairs(encoded, tokenizer.pad_token_id)

    packed = ResponseScorer(model).eval()(batch)

    # One row per pair, the prompt only once in it, chosen first then rejected in the output.
    assert batch.input_ids.shape[0] == len(PAIRS)
    assert batch.num_tokens == sum(
        len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in encoded
    )
    expected = separate_logps(model, encoded, tokenizer.pad_token_id)
    torch.testing.assert_close(packed, expected, atol=1e-4, rtol=1e-5)


@torch.inference_mode()
def test_padded_rows_score_like_each_sequence_alone(tiny_loaded):
    tokenizer, model = tiny_loaded.tokenizer, tiny_loaded.model
    encoded = encode_pairs(tokenizer, PAIRS, max_length=256)
    rows = [(p.prompt_ids, p.chosen_ids) for p in encoded] + [
        (p.prompt_ids, p.rejected_ids) for p in encoded
    ]

    padded = ResponseScorer(model).eval()(collate(rows, tokenizer.pad_token_id))

    expected = separate_logps(model, encoded, tokenizer.pad_token_id)
    torch.testing.assert_close(padded, expected, atol=1e-4, rtol=1e-5)


def test_gradients_reach_the_shared_prompt_from_both_responses(tiny_loaded):
    """The prompt's last position predicts both responses' first tokens; both must train it."""
    tokenizer = tiny_loaded.tokenizer
    encoded = encode_pairs(tokenizer, PAIRS[:1], max_length=256)
    batch = collate_pairs(encoded, tokenizer.pad_token_id)
    first_targets = [
        k for k, predictor in enumerate(batch.predictors.tolist())
        if predictor == len(encoded[0].prompt_ids) - 1
    ]
    assert len(first_targets) == 2
    assert batch.targets[first_targets].tolist() == [
        encoded[0].chosen_ids[0],
        encoded[0].rejected_ids[0],
    ]
    assert batch.segments[first_targets].tolist() == [0, 1]


def test_a_pair_without_prompt_tokens_is_refused():
    pair = EncodedPair(prompt_ids=[], chosen_ids=[1, 2], rejected_ids=[3])
    with pytest.raises(ValueError, match="prompt token"):
        collate_pairs([pair], pad_id=0)


def test_the_reference_pass_batches_by_length_and_answers_in_the_given_order(tiny_loaded):
    from alignment_core.training.scoring import score_pairs

    tokenizer, model = tiny_loaded.tokenizer, tiny_loaded.model
    encoded = encode_pairs(tokenizer, PAIRS, max_length=256)  # long, long, short
    scorer = ResponseScorer(model).eval()

    scores = score_pairs(scorer, encoded, tokenizer.pad_token_id, 2, torch.device("cpu"))

    with torch.inference_mode():
        expected = separate_logps(model, encoded, tokenizer.pad_token_id)
    n = len(PAIRS)
    torch.testing.assert_close(scores, torch.stack([expected[:n], expected[n:]], dim=1),
                               atol=1e-4, rtol=1e-5)


def plain_token_logps(hidden, weight, targets):
    return torch.nn.functional.linear(hidden, weight).log_softmax(-1).gather(1, targets[:, None])[:, 0]


@pytest.mark.parametrize("chunk", [7, 50, 4096])  # uneven chunks, exactly the vocabulary, one
def test_token_logps_matches_log_softmax_in_value_and_gradient(monkeypatch, chunk):
    from alignment_core.training import losses

    monkeypatch.setattr(losses, "VOCAB_CHUNK", chunk)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(9, 16, generator=generator, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (9,), generator=generator)
    upstream = torch.randn(9, generator=generator)

    fused = losses.token_logps(hidden, weight, targets)
    fused_grads = torch.autograd.grad((fused * upstream).sum(), (hidden, weight))
    plain = plain_token_logps(hidden, weight, targets)
    plain_grads = torch.autograd.grad((plain * upstream).sum(), (hidden, weight))

    torch.testing.assert_close(fused, plain)
    for got, expected in zip(fused_grads, plain_grads):
        torch.testing.assert_close(got, expected)


def test_token_logps_refuses_a_second_backward_through_its_reused_buffer():
    from alignment_core.training.losses import token_logps

    hidden = torch.randn(3, 4, requires_grad=True)
    weight = torch.randn(10, 4)
    out = token_logps(hidden, weight, torch.tensor([1, 2, 3])).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        out.backward()


def test_the_scorer_trains_like_autograds_log_softmax(tiny_dir, monkeypatch):
    """The LoRA gradients of a DPO step are the ones the plain log_softmax path gives."""
    from peft import LoraConfig, get_peft_model

    from alignment_core.model_loader import load_model
    from alignment_core.training import losses

    loaded = load_model(tiny_dir, device="cpu", trainable=True)  # its own copy: peft edits it
    tokenizer = loaded.tokenizer
    torch.manual_seed(0)
    model = get_peft_model(
        loaded.model,
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                   init_lora_weights=False),
    )
    batch = collate_pairs(encode_pairs(tokenizer, PAIRS, max_length=256), tokenizer.pad_token_id)
    scorer = ResponseScorer(model).train()
    trainable = [p for p in model.parameters() if p.requires_grad]

    def lora_grads():
        chosen, rejected = scorer(batch).split(len(PAIRS))
        loss, _, _ = losses.dpo_loss(chosen, rejected, chosen.detach() - 1, rejected.detach(), 0.1)
        return torch.autograd.grad(loss, trainable)

    fused = lora_grads()
    monkeypatch.setattr(losses, "token_logps", plain_token_logps)
    plain = lora_grads()
    for got, expected in zip(fused, plain):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)
    assert any(float(g.abs().sum()) > 0 for g in fused)
