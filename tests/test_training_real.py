"""Integration: the training job fine-tunes the real SmolLM2-135M-Instruct and its loss falls."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotator.learner_runtime import _loaded
from annotator.models import JobStatus, TrainingRun
from annotator.services.snapshots import snapshot_create
from annotator.services.training import TrainingSettings, training_launch
from tests.factories import make_project
from tests.training_factories import curate_many

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_model]


def test_a_few_sft_steps_on_the_real_model_lower_the_loss(settings, real_model_dir, tmp_path):
    settings.LEARNER_MODEL = str(real_model_dir)
    settings.DATA_DIR = tmp_path / "data"
    _loaded.cache_clear()
    project = make_project()
    curate_many(project, 4)
    snapshot = snapshot_create(project=project, name="real", validation_fraction=0)
    # One batch of all four refusals, seen six times: the loss on it must fall.
    run = training_launch(project=project, snapshot=snapshot, settings=TrainingSettings(
        method="sft", lora_r=8, lora_alpha=16, learning_rate=1e-3, epochs=6, batch_size=4,
        max_length=64, checkpoint_every=0, eval_budget=0))

    call_command("worker", "--batch", "--interval", "0")

    run = TrainingRun.objects.select_related("output_version").get(pk=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    losses = [point["loss"] for point in run.loss_history]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0], losses
    assert (run.output_version.adapter_dir() / "adapter_model.safetensors").is_file()
    _loaded.cache_clear()
