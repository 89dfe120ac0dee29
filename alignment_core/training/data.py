"""Turn prompts and responses into token ids, and token ids into padded batches.

A prompt is rendered with the tokenizer's chat template (with the generation prompt), the
response is whatever the template adds after it when the assistant turn is appended (for
SmolLM2: the text, `<|im_end|>` and a newline). This is the same split TRL uses, so the loss
covers exactly the tokens the model should learn to produce, and nothing of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import PreferencePair, Prompt, SFTExample


@dataclass
class EncodedExample:
    prompt_ids: list[int]
    response_ids: list[int]


@dataclass
class EncodedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]


@dataclass
class Batch:
    """Right-padded sequences and a mask of the tokens that are scored (the responses)."""

    input_ids: torch.Tensor  # (n, length)
    response_mask: torch.Tensor  # (n, length) bool: True where the token is part of a response
    num_tokens: int  # real (non-padding) tokens, for tokens/s


def messages_for(prompt: Prompt) -> list[dict[str, str]]:
    """One user turn for a string, or the chat history as given."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def _template_ids(tokenizer, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _split(tokenizer, prompt: Prompt, response: str) -> tuple[list[int], list[int]]:
    """Token ids of the prompt and of the response the chat template renders after it."""
    messages = messages_for(prompt)
    prompt_ids = _template_ids(tokenizer, messages, generation_prompt=True)
    full_ids = _template_ids(
        tokenizer, messages + [{"role": "assistant", "content": response}], generation_prompt=False
    )
    # Templates may render the prompt slightly differently once an answer follows; the response
    # starts where the two renderings diverge.
    cut = _common_prefix(prompt_ids, full_ids)
    return full_ids[:cut], full_ids[cut:]


def _fit(prompt_ids: list[int], response_len: int, max_length: int) -> list[int]:
    """Drop the start of a long prompt so that at least half the budget is left for the response."""
    if len(prompt_ids) + response_len <= max_length:
        return prompt_ids
    keep = max(max_length - response_len, max_length // 2)
    return prompt_ids[-keep:] if len(prompt_ids) > keep else prompt_ids


def encode_sft(tokenizer, examples: list[SFTExample], max_length: int) -> list[EncodedExample]:
    encoded = []
    for example in examples:
        prompt_ids, response_ids = _split(tokenizer, example.prompt, example.response)
        prompt_ids = _fit(prompt_ids, len(response_ids), max_length)
        encoded.append(EncodedExample(prompt_ids, response_ids[: max_length - len(prompt_ids)]))
    return encoded


def encode_pairs(tokenizer, pairs: list[PreferencePair], max_length: int) -> list[EncodedPair]:
    encoded = []
    for pair in pairs:
        prompt_ids, chosen_ids = _split(tokenizer, pair.prompt, pair.chosen)
        prompt_rejected, rejected_ids = _split(tokenizer, pair.prompt, pair.rejected)
        # Both responses must be scored after the same prompt tokens.
        cut = _common_prefix(prompt_ids, prompt_rejected)
        chosen_ids = prompt_ids[cut:] + chosen_ids
        rejected_ids = prompt_rejected[cut:] + rejected_ids
        prompt_ids = _fit(prompt_ids[:cut], max(len(chosen_ids), len(rejected_ids)), max_length)
        room = max_length - len(prompt_ids)
        encoded.append(EncodedPair(prompt_ids, chosen_ids[:room], rejected_ids[:room]))
    return encoded


def collate(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """Right-pad (prompt, response) id lists to the longest one in this batch only.

    Right padding keeps every real token at its natural position and lets the model attend
    causally without an attention mask: a real token only ever looks at earlier tokens, which
    are all real, so the padding after it cannot change its output.
    """
    length = max(len(p) + len(r) for p, r in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    response_mask = torch.zeros((len(sequences), length), dtype=torch.bool)
    for row, (prompt_ids, response_ids) in enumerate(sequences):
        ids = prompt_ids + response_ids
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        response_mask[row, len(prompt_ids) : len(ids)] = True
    num_tokens = sum(len(p) + len(r) for p, r in sequences)
    return Batch(input_ids=input_ids, response_mask=response_mask, num_tokens=num_tokens)


def collate_sft(examples: list[EncodedExample], pad_id: int) -> Batch:
    return collate([(e.prompt_ids, e.response_ids) for e in examples], pad_id)


def collate_pairs(pairs: list[EncodedPair], pad_id: int) -> Batch:
    """All chosen sequences first, then all rejected ones, so one forward pass scores both."""
    chosen = [(p.prompt_ids, p.chosen_ids) for p in pairs]
    rejected = [(p.prompt_ids, p.rejected_ids) for p in pairs]
    return collate(chosen + rejected, pad_id)
