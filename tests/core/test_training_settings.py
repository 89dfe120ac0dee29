"""Training settings are declared once, on TrainConfig, and every front end derives from it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from alignment_core.training import TrainConfig
from alignment_core.training.cli import build_parser
from alignment_core.training.settings import (
    add_arguments,
    check_values,
    config_from_values,
    group,
    setting,
    settings_of,
    values_from_args,
)


@dataclass
class Inner:
    size: int = setting(8, minimum=1, maximum=64, help="inner size")


@dataclass
class Example:
    """A config like TrainConfig, with one setting of each kind."""

    rate: float | None = setting(None, minimum=0, maximum=1, above=True, help="a rate")
    mode: str = setting("a", choices=("a", "b"), help="a mode")
    names: tuple[str, ...] = setting(default_factory=lambda: ("x",), pattern=r"[a-z]+",
                                     pattern_hint="Lower-case names only.", help="names")
    inner: Inner = group(Inner, prefix="inner_")
    threads: int | None = setting(None, scope="host", flag="--threads", help="host threads")
    untouched: float = 0.5  # not a setting: no front end offers it


def test_settings_are_listed_flat_with_their_declared_shape():
    found = {s.name: s for s in settings_of(Example)}
    assert list(found) == ["rate", "mode", "names", "inner_size", "threads"]
    assert found["rate"].optional and found["rate"].kind is float
    assert found["inner_size"].path == ("inner", "size") and found["inner_size"].default == 8
    assert [s.name for s in settings_of(Example, scope="run")] == ["rate", "mode", "names",
                                                                   "inner_size"]


def test_values_are_checked_against_the_declared_bounds():
    errors = check_values(settings_of(Example), {"rate": 0, "mode": "c", "names": ("X",),
                                                 "inner_size": 65})
    assert errors == {"rate": ["Rate must be above 0 and at most 1."],
                      "mode": ["Choose one of a, b."],
                      "names": ["Lower-case names only."],
                      "inner_size": ["Inner size must be between 1 and 64."]}
    assert check_values(settings_of(Example), {"rate": 1.0, "inner_size": 1}) == {}


def test_argparse_options_come_from_the_declarations():
    parser = argparse.ArgumentParser()
    add_arguments(parser, settings_of(Example))
    args = parser.parse_args(["--rate", "0.5", "--names", "a, b", "--inner-size", "3",
                              "--threads", "2"])
    values = values_from_args(settings_of(Example), args)
    assert values == {"rate": 0.5, "mode": "a", "names": ("a", "b"), "inner_size": 3,
                      "threads": 2}
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])
    config = config_from_values(Example, values)
    assert config == Example(rate=0.5, names=("a", "b"), inner=Inner(size=3), threads=2)


def test_the_training_cli_offers_every_declared_setting():
    flags = {action.dest for action in build_parser()._actions}
    assert {s.name for s in settings_of(TrainConfig)} <= flags
    assert "warmup_ratio" not in flags  # a plain field, not a setting


def test_train_config_round_trips_from_flat_values():
    config = config_from_values(TrainConfig, {"lora_r": 4, "target_modules": ["q_proj"],
                                              "learning_rate": 1e-3}, meta={"k": 1})
    assert config.lora.r == 4 and config.lora.target_modules == ("q_proj",)
    assert config.lr_for("sft") == 1e-3 and config.meta == {"k": 1}
    assert TrainConfig.from_dict(config.to_dict()) == config
