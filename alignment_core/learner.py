"""The learner: batched chat generation with a causal LM (optionally with a LoRA adapter).

Generation is the slowest part of a red-team round on a CPU, so this module does the few things
that matter for throughput: it batches prompts (left padding, so every row ends where generation
starts), sorts them by length first so a batch wastes little work on padding, runs under
`torch.inference_mode` with the KV cache on, and restores the caller's order at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alignment_core.model_loader import LoadedModel, load_model

Messages = list[dict]
Prompt = str | Messages


def prompt_messages(prompt: Prompt, system_prompt: str | None = None) -> Messages:
    """A string is one user turn; a list is a chat history. Add the system prompt if missing.

    Local and remote generators both build their requests with it, so a prompt means the same
    conversation whichever engine answers it.
    """
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system_prompt and not (messages and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages


class Cancelled(Exception):
    """Raised by `Learner.generate` when `should_cancel()` says stop."""


@dataclass
class GenerationConfig:
    max_new_tokens: int = 96  # upper bound on the answer length, in tokens
    do_sample: bool = False  # greedy when False (reproducible); sampled when True
    temperature: float = 0.7  # only used when sampling
    top_p: float = 0.95  # nucleus sampling cut-off, only used when sampling
    seed: int = 0  # sampling seed; each batch reseeds with seed + batch index
    batch_size: int = 8  # prompts per forward pass; 8-32 is a good range on a CPU
    system_prompt: str | None = None  # prepended to every prompt that has no system turn
    min_new_tokens: int = 0  # benchmarks set this to max_new_tokens so every row is equally long


class _CancelCheck:  # duck-typed transformers StoppingCriteria
    """A stopping criterion that polls `should_cancel` at most every `interval` seconds.

    Checking only between batches would leave a cancel waiting for a whole batch (tens of seconds
    on a CPU); polling every step could hammer a database, so the check is throttled.
    """

    def __init__(self, should_cancel: Callable[[], bool], interval: float = 1.0) -> None:
        self.should_cancel = should_cancel
        self.interval = interval
        self.last = time.monotonic()
        self.fired = False

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.fired = bool(self.should_cancel())
        return self.fired


class Learner:
    """A loaded model plus the chat-generation loop used by red-team rounds and evaluation."""

    def __init__(self, loaded: LoadedModel) -> None:
        # Imported here: alignment_core.endpoints imports this module (GenerationConfig).
        from alignment_core.endpoints.types import Usage

        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        # Left padding keeps the last prompt token of every row in the same column, which is
        # what batched decoding needs; load_model sets it, but a caller may pass its own.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokens_generated = 0  # real (non-padding) tokens generated so far, for benchmarks
        # The same tally a remote endpoint reports, so a campaign records usage either way.
        self.usage = Usage()

    @classmethod
    def from_dir(
        cls, model_dir: Path | str, adapter: Path | str | None = None, device: str | None = None
    ) -> Learner:
        return cls(load_model(model_dir, adapter=adapter, device=device))

    def to_messages(self, prompt: Prompt, system_prompt: str | None = None) -> Messages:
        """See `prompt_messages`."""
        return prompt_messages(prompt, system_prompt)

    def render(self, prompt: Prompt, system_prompt: str | None = None) -> str:
        """The exact text the model sees, chat template and generation prompt included."""
        return self.tokenizer.apply_chat_template(
            self.to_messages(prompt, system_prompt), add_generation_prompt=True, tokenize=False
        )

    def generate(
        self,
        prompts: list[Prompt],
        config: GenerationConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[str]:
        """Answer every prompt; returns the answers in the order of `prompts`.

        `progress(done, total)` is called after each batch. `should_cancel()` is checked before
        each batch (and, throttled, during one); when it returns true, `Cancelled` is raised.
        """
        config = config or GenerationConfig()
        total = len(prompts)
        if total == 0:
            return []
        # 1. Render every prompt through the chat template and measure its length.
        texts = [self.render(prompt, config.system_prompt) for prompt in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        # 2. Sort by length so each batch holds prompts of similar length (little padding).
        order = sorted(range(total), key=lambda index: lengths[index], reverse=True)
        answers: list[str | None] = [None] * total
        batch_size = max(1, config.batch_size)
        done = 0
        for batch_index, start in enumerate(range(0, total, batch_size)):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"generation cancelled after {done} of {total} prompts")
            rows = order[start : start + batch_size]
            # 3. Generate one batch; the decoded answers go back to their original positions.
            outputs = self._generate_batch([texts[row] for row in rows], config,
                                           seed=config.seed + batch_index,
                                           should_cancel=should_cancel)
            for row, answer in zip(rows, outputs):
                answers[row] = answer
            self.usage.add(sum(lengths[row] for row in rows), 0, requests=len(rows))
            done += len(rows)
            if progress is not None:
                progress(done, total)
        return [answer or "" for answer in answers]

    def _generate_batch(
        self,
        texts: list[str],
        config: GenerationConfig,
        seed: int,
        should_cancel: Callable[[], bool] | None,
    ) -> list[str]:
        import torch
        from transformers import StoppingCriteriaList

        tokenizer = self.tokenizer
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        device = next(self.model.parameters()).device
        encoded = {name: tensor.to(device) for name, tensor in encoded.items()}
        sampling = (
            {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p}
            if config.do_sample
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        check = _CancelCheck(should_cancel) if should_cancel is not None else None
        if config.do_sample:
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=config.max_new_tokens,
                min_new_tokens=config.min_new_tokens or None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                use_cache=True,
                stopping_criteria=StoppingCriteriaList([check]) if check else None,
                **sampling,
            )
        if check is not None and check.fired:
            raise Cancelled("generation cancelled during a batch")
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        answers = []
        for ids in new_tokens.tolist():
            # Count only real tokens: everything before the first end-of-sequence token; the rest
            # is padding added after a row finished early.
            row = ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids
            self.tokens_generated += len(row)
            self.usage.completion_tokens += len(row)
            answers.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        return answers
