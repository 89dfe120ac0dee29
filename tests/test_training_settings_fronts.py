"""The page, the API and `manage.py train` offer exactly the declared training settings."""

from __future__ import annotations

import pytest
from django.core.management import load_command_class

from annotator.api.training import TrainingLaunchInput
from annotator.services.training import TRAINING_SETTINGS
from annotator.views.training import TrainingForm
from tests.factories import make_project

pytestmark = pytest.mark.django_db

NAMES = {s.name for s in TRAINING_SETTINGS}


def test_every_declared_setting_is_a_form_field_an_api_field_and_an_option():
    form = TrainingForm(project=make_project())
    assert set(form.fields) - {"snapshot"} == NAMES
    assert set(TrainingLaunchInput().fields) - {"snapshot"} == NAMES
    parser = load_command_class("annotator", "train").create_parser("manage.py", "train")
    assert {action.dest for action in parser._actions} >= NAMES
    assert {"num_threads", "device"}.isdisjoint(NAMES)  # host settings stay off the web


def test_the_form_and_the_api_apply_the_declared_rules():
    form = TrainingForm({"lora_dropout": 1.0, "beta": 0}, project=make_project())
    assert not form.is_valid()
    assert form.errors["lora_dropout"] == ["LoRA dropout must be at least 0 and below 1."]
    assert form.errors["beta"] == ["Beta must be above 0 and at most 10."]
    data = TrainingLaunchInput(data={"snapshot": 1, "eval_budget": 600})
    assert not data.is_valid()
    assert data.errors["eval_budget"][0] == "Held-out attacks must be between 0 and 512."
