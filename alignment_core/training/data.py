"""Turn prompts and responses into token ids, and token ids into padded batches.

A prompt is rendered with the tokenizer's chat template (with the generation prompt), the
response is whatever the template adds after it when the assistant turn is appended (for
SmolLM2: the text, `<|im_end|>` and a newline). This is the same split TRL uses, so the loss
covers exactly the tokens the model should learn to produce, and nothing of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    """Token rows, and which positions of them predict which scored tokens.

    Scored token k is `targets[k]`, predicted by the hidden state at flat position
    `predictors[k]` (an index into `input_ids.view(-1)`), and its log-prob counts towards the
    total of sequence `segments[k]`. Spelling the predictions out lets one row hold a prompt and
    two responses that both continue it (see `collate_pairs`).
    """

    input_ids: torch.Tensor  # (rows, length)
    predictors: torch.Tensor  # (k,) long
    targets: torch.Tensor  # (k,) long
    segments: torch.Tensor  # (k,) long, in [0, num_sequences)
    num_sequences: int
    num_tokens: int  # real (non-padding) tokens, for tokens/s
    position_ids: torch.Tensor | None = None  # (rows, length); None: 0, 1, 2, ... on every row
    attention_mask: torch.Tensor | None = None  # (rows, 1, length, length) bool; None: causal

    def to(self, device: torch.device | str) -> Batch:
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        return replace(
            self,
            input_ids=move(self.input_ids),
            predictors=move(self.predictors),
            targets=move(self.targets),
            segments=move(self.segments),
            position_ids=move(self.position_ids),
            attention_mask=move(self.attention_mask),
        )


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
        tokenizer, [*messages, {"role": "assistant", "content": response}], generation_prompt=False
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
    """One right-padded row per (prompt, response), padded to the longest one in this batch only.

    Right padding keeps every real token at its natural position and lets the model attend
    causally without an attention mask: a real token only ever looks at earlier tokens, which
    are all real, so the padding after it cannot change its output.
    """
    length = max(len(p) + len(r) for p, r in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    predictors, targets, segments = [], [], []
    for row, (prompt_ids, response_ids) in enumerate(sequences):
        ids = prompt_ids + response_ids
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        first = max(len(prompt_ids), 1)  # the first token has nothing before it to predict it
        predictors.extend(row * length + t - 1 for t in range(first, len(ids)))
        targets.extend(ids[first:])
        segments.extend([row] * (len(ids) - first))
    return Batch(
        input_ids=input_ids,
        predictors=torch.tensor(predictors, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        segments=torch.tensor(segments, dtype=torch.long),
        num_sequences=len(sequences),
        num_tokens=sum(len(p) + len(r) for p, r in sequences),
    )


def collate_sft(examples: list[EncodedExample], pad_id: int) -> Batch:
    return collate([(e.prompt_ids, e.response_ids) for e in examples], pad_id)


def collate_pairs(pairs: list[EncodedPair], pad_id: int) -> Batch:
    """One row per pair: the prompt once, then the chosen response, then the rejected one.

    The shared prompt is computed once instead of twice. An attention mask keeps the two
    responses apart (a rejected token sees the prompt and the earlier rejected tokens, never
    the chosen ones), and the rejected response's positions restart where the prompt ends, so
    each response is scored exactly as if it followed the prompt alone. Sequence i of the
    result is pair i's chosen response and sequence n + i its rejected one.
    """
    n = len(pairs)
    length = max(len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((n, length), dtype=torch.long)
    # Which part each position belongs to: 0 prompt, 1 chosen, 2 rejected, 3 padding.
    parts = torch.full((n, length), 3, dtype=torch.long)
    predictors, targets, segments = [], [], []
    for row, pair in enumerate(pairs):
        p, c, r = len(pair.prompt_ids), len(pair.chosen_ids), len(pair.rejected_ids)
        input_ids[row, : p + c + r] = torch.tensor(
            pair.prompt_ids + pair.chosen_ids + pair.rejected_ids, dtype=torch.long
        )
        position_ids[row, : p + c] = torch.arange(p + c)
        position_ids[row, p + c : p + c + r] = torch.arange(p, p + r)
        position_ids[row, p + c + r :] = torch.arange(p + c + r, length)
        parts[row, :p] = 0
        parts[row, p : p + c] = 1
        parts[row, p + c : p + c + r] = 2
        if p == 0:
            raise ValueError("A preference pair needs at least one prompt token")
        base = row * length
        # The last prompt token predicts the first token of both responses.
        last_prompt = base + p - 1
        for segment, start, size in ((row, p, c), (n + row, p + c, r)):
            if size == 0:
                continue
            predictors.extend([last_prompt] + [base + start + t for t in range(size - 1)])
            targets.extend(input_ids[row, start : start + size].tolist())
            segments.extend([segment] * size)
    causal = torch.ones((length, length), dtype=torch.bool).tril()
    same_part = parts[:, :, None] == parts[:, None, :]
    sees_prompt = (parts == 0)[:, None, :]
    attention_mask = (causal & (same_part | sees_prompt))[:, None]
    return Batch(
        input_ids=input_ids,
        predictors=torch.tensor(predictors, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        segments=torch.tensor(segments, dtype=torch.long),
        num_sequences=2 * n,
        num_tokens=sum(len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs),
        position_ids=position_ids,
        attention_mask=attention_mask,
    )


def epoch_order(n: int, seed: int, phase_index: int, epoch: int) -> list[int]:
    """The example order of one epoch: a function of the seed only, so a resumed run sees the same."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + phase_index * 1_009 + epoch)
    return torch.randperm(n, generator=generator).tolist()
