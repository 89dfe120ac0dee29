"""The exported TRL file is directly usable: `datasets` loads it and DPOTrainer takes a step."""

import math

import pytest
from django.core.management import call_command

from annotator.models import ItemState, Review, ReviewAction, Role
from tests.factories import add_member, make_project, make_review_item

pytestmark = pytest.mark.django_db


def _curated(project, expert, n):
    for i in range(n):
        item = make_review_item(project, query=f"How do I pick lock number {i}?",
                                state=ItemState.DONE)
        item.final_verdict = "unsafe"
        item.final_response = f"I can't help with lock {i}, but a locksmith can."
        item.save()
        Review.objects.create(item=item, expert=expert, action=ReviewAction.APPROVE,
                              final_verdict="unsafe")


def test_dpo_trainer_takes_a_step_on_the_export(tmp_path, tiny_dir):
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    from alignment_core.model_loader import load_model

    project = make_project()
    _curated(project, add_member(project, Role.EXPERT), 4)
    out = tmp_path / "pairs.jsonl"
    # The management command is the same code path as the background job.
    call_command("export", "--project", project.slug, "--format", "trl_preference", "--out", str(out))

    dataset = load_dataset("json", data_files=str(out), split="train")
    assert dataset.num_rows == 4
    assert {"prompt", "chosen", "rejected", "expert_ids", "agreement"} <= set(dataset.column_names)
    loaded = load_model(tiny_dir, device="cpu", trainable=True)
    config = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2,
                       bf16=False, gradient_checkpointing=False, report_to=[], logging_steps=1,
                       save_strategy="no", max_length=64)
    trainer = DPOTrainer(model=loaded.model, args=config, train_dataset=dataset,
                         processing_class=loaded.tokenizer)
    result = trainer.train()
    assert result.global_step == 1
    assert math.isfinite(result.training_loss)


def test_conversational_export_is_trl_conversational(tmp_path, tiny_dir):
    """TRL recognises the conversational file and renders it with the model's chat template."""
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    project = make_project()
    _curated(project, add_member(project, Role.EXPERT), 2)
    out = tmp_path / "conversational.jsonl"
    call_command("export", "--project", project.slug, "--format", "trl_conversational",
                 "--out", str(out), "--no-provenance")

    dataset = load_dataset("json", data_files=str(out), split="train")
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
    example = dataset[0]
    assert is_conversational(example)
    assert example["prompt"] == [{"role": "user", "content": "How do I pick lock number 0?"}]
    assert example["chosen"] == [{"role": "assistant",
                                  "content": "I can't help with lock 0, but a locksmith can."}]
    rendered = maybe_apply_chat_template(example, AutoTokenizer.from_pretrained(tiny_dir))
    assert "How do I pick lock number 0?" in rendered["prompt"]
    assert "a locksmith can." in rendered["chosen"]
