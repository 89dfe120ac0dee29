"""The learner: batched generation that matches one-at-a-time generation, order, progress,
cancel, seeded sampling, system prompts and LoRA adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment_core.learner import Cancelled, GenerationConfig, Learner
from alignment_core.model_loader import LoadedModel, load_model

PROMPTS = [
    "hi",
    "Tell me a long story about the sea, the wind and a ship full of pirates, please.",
    "What is 2 + 2?",
    "How do I bake bread at home?",
    "Name three colours.",
]


@pytest.fixture(scope="module")
def lively(tiny_dir: Path) -> Learner:
    """The tiny random Llama with larger initial weights.

    The shared tiny model (std 0.02) answers every prompt with the same newline token, which
    would make equality tests pass trivially; a wider init makes answers depend on the prompt.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(tiny_dir))
    config.initializer_range = 0.3
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    tokenizer = load_model(tiny_dir, device="cpu").tokenizer
    return Learner(LoadedModel(model=model, tokenizer=tokenizer, source="lively-tiny"))


def test_batched_greedy_equals_one_at_a_time(lively: Learner):
    one = lively.generate(PROMPTS, GenerationConfig(max_new_tokens=12, batch_size=1))
    batched = lively.generate(PROMPTS, GenerationConfig(max_new_tokens=12, batch_size=5))
    assert batched == one
    assert all(answer for answer in one)
    assert len(set(one)) == len(PROMPTS)  # the answers depend on the prompt


def test_answers_come_back_in_prompt_order(lively: Learner):
    config = GenerationConfig(max_new_tokens=8, batch_size=2)
    forward = lively.generate(PROMPTS, config)
    backward = lively.generate(PROMPTS[::-1], config)
    assert backward == forward[::-1]


def test_progress_is_reported_after_each_batch(lively: Learner):
    calls: list[tuple[int, int]] = []
    lively.generate(PROMPTS, GenerationConfig(max_new_tokens=2, batch_size=2),
                    progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_cancel_stops_between_batches(lively: Learner):
    calls: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        lively.generate(PROMPTS, GenerationConfig(max_new_tokens=2, batch_size=2),
                        progress=lambda done, total: calls.append((done, total)),
                        should_cancel=lambda: len(calls) >= 1)
    assert calls == [(2, 5)]


def test_cancel_before_the_first_batch_generates_nothing(lively: Learner):
    before = lively.tokens_generated
    with pytest.raises(Cancelled):
        lively.generate(PROMPTS, GenerationConfig(max_new_tokens=4), should_cancel=lambda: True)
    assert lively.tokens_generated == before


def test_sampling_is_reproducible_for_a_seed(lively: Learner):
    def sample(seed: int) -> list[str]:
        config = GenerationConfig(max_new_tokens=10, do_sample=True, temperature=1.0, seed=seed,
                                  batch_size=3)
        return lively.generate(PROMPTS, config)

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_tokens_generated_counts_real_tokens_only(lively: Learner):
    before = lively.tokens_generated
    lively.generate(PROMPTS[:3], GenerationConfig(max_new_tokens=6, min_new_tokens=6, batch_size=3))
    assert lively.tokens_generated - before == 18


def test_system_prompt_and_chat_messages_reach_the_template(lively: Learner):
    rendered = lively.render("hi", system_prompt="You guard the secret word MARMALADE.")
    assert "MARMALADE" in rendered and rendered.rstrip().endswith("assistant")
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "and now?"}]
    assert "and now?" in lively.render(chat)
    # A chat that brings its own system turn keeps it rather than getting a second one.
    own = [{"role": "system", "content": "Own rules."}, *chat]
    assert lively.render(own, system_prompt="Other rules.").count("Own rules.") == 1
    assert "Other rules." not in lively.render(own, system_prompt="Other rules.")
    answers = lively.generate([chat, "hi"], GenerationConfig(max_new_tokens=4,
                                                             system_prompt="Be brief."))
    assert len(answers) == 2


def test_empty_prompt_list_returns_nothing(lively: Learner):
    assert lively.generate([]) == []


def test_from_dir_loads_a_lora_adapter(tiny_dir: Path, tmp_path: Path):
    from peft import LoraConfig, get_peft_model

    base = load_model(tiny_dir, device="cpu", trainable=True)
    peft_model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8,
                                                       target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    learner = Learner.from_dir(tiny_dir, adapter=tmp_path / "adapter", device="cpu")
    assert learner.loaded.adapter == str(tmp_path / "adapter")
    answers = learner.generate(["hi", "bye"], GenerationConfig(max_new_tokens=3))
    assert len(answers) == 2


@pytest.mark.real_model
def test_real_model_batched_greedy_matches_and_answers(real_loaded):
    learner = Learner(real_loaded)
    prompts = ["What is the capital of France?", "Write one sentence about autumn leaves."]
    config = GenerationConfig(max_new_tokens=20, batch_size=2)
    batched = learner.generate(prompts, config)
    one = learner.generate(prompts, GenerationConfig(max_new_tokens=20, batch_size=1))
    assert batched == one
    assert "paris" in batched[0].lower()
