"""Settings declared once, on the config dataclass, and read by every front end.

A field of `TrainConfig` (or of any dataclass) declared with `setting(...)` carries its help text,
bounds and choices in its metadata. From that one declaration:

- `settings_of(TrainConfig)` lists the settings flat (`lora.r` becomes `lora_r`);
- `add_arguments(parser, settings)` adds argparse options (`python -m alignment_core.training`
  and `manage.py train`), `values_from_args` reads them back;
- `check_values(settings, values)` applies the bounds and returns the error messages per setting;
- `config_from_values(TrainConfig, values)` builds the nested config from flat values;
- the Django side builds its form fields and DRF serializer fields from the same list.

Nothing here imports Django or torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SCOPES = ("run", "host")


@dataclass(frozen=True)
class Setting:
    """One user-facing setting: where it lives in the config and how to check it.

    `scope` "run" settings belong to a run (form, API, both command lines); "host" settings
    belong to the machine that trains (device, threads) and only the standalone CLI offers them.
    """

    name: str  # the flat name: the form field, the API key, the argparse dest
    path: tuple[str, ...]  # attribute path in the config, e.g. ("lora", "r")
    kind: type  # int, float, str, bool or tuple (a tuple of strings)
    default: Any
    help: str
    label: str
    optional: bool = False  # None is allowed (and means what `help` says)
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False  # the minimum itself is not allowed
    below: bool = False  # the maximum itself is not allowed
    choices: tuple[str, ...] = ()
    pattern: str = ""  # every string (or every item of a tuple) must match it
    pattern_hint: str = ""  # what the pattern means, for the error message
    flag: str = ""  # the command line option, e.g. "--lr"
    scope: str = "run"

    def check(self, value: Any) -> str | None:
        """The error message for `value`, or None when it is allowed."""
        if value is None:
            return None if self.optional else f"{self.label} is required."
        if self.choices and value not in self.choices:
            return f"Choose one of {', '.join(self.choices)}."
        if self.pattern:
            items = value if isinstance(value, (tuple, list)) else (value,)
            if not items or not all(re.fullmatch(self.pattern, str(item)) for item in items):
                return self.pattern_hint or f"{self.label} must match {self.pattern}."
        if self.kind in (int, float) and not self._in_bounds(value):
            return f"{self.label} must be {self.bounds_text()}."
        return None

    def _in_bounds(self, value: float) -> bool:
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.above else value < low):
            return False
        return high is None or (value < high if self.below else value <= high)

    def bounds_text(self) -> str:
        """"between 1 and 256", "above 0 and at most 0.1", "at least 0", ..."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not (self.above or self.below):
            return f"between {low:g} and {high:g}"
        parts = []
        if low is not None:
            parts.append(f"{'above' if self.above else 'at least'} {low:g}")
        if high is not None:
            parts.append(f"{'below' if self.below else 'at most'} {high:g}")
        return " and ".join(parts)

    def parse_text(self, text: str) -> Any:
        """A value typed on a command line or in a form's text box."""
        if self.kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return self.kind(text)

    def show(self, value: Any) -> str:
        """A value as the user types it (tuples comma-separated)."""
        if isinstance(value, (tuple, list)):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)


def setting(default: Any = dataclasses.MISSING, *, help: str, label: str = "",
            minimum: float | None = None, maximum: float | None = None, above: bool = False,
            below: bool = False, choices: Iterable[str] = (), pattern: str = "",
            pattern_hint: str = "", flag: str = "", name: str = "", scope: str = "run",
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a user-facing setting (see the module docstring).

    `name` overrides the flat name (by default the field name, after the parent's prefix).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    spec = {"help": help, "label": label, "minimum": minimum, "maximum": maximum,
            "above": above, "below": below, "choices": tuple(choices), "pattern": pattern,
            "pattern_hint": pattern_hint, "flag": flag, "name": name, "scope": scope}
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"setting": spec})


def group(default_factory: Any, *, prefix: str) -> Any:
    """A nested dataclass of settings; its settings' flat names start with `prefix`."""
    return dataclasses.field(default_factory=default_factory, metadata={"prefix": prefix})


def _kind(annotation: Any) -> tuple[type, bool, tuple[str, ...]]:
    """(base type, None allowed, Literal choices) of a field's resolved annotation."""
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        optional = type(None) in args
        annotation = next(a for a in args if a is not type(None))
    if typing.get_origin(annotation) is Literal:
        return str, optional, tuple(str(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        return tuple, optional, ()
    if annotation in (int, float, str, bool):
        return annotation, optional, ()
    raise TypeError(f"A setting must be int, float, str, bool or tuple[str, ...], not {annotation}")


def settings_of(cls: type, *, scope: str | None = None, _prefix: str = "",
                _path: tuple[str, ...] = ()) -> list[Setting]:
    """The settings a config dataclass declares, flat, in declaration order."""
    hints = typing.get_type_hints(cls)
    found: list[Setting] = []
    for f in dataclasses.fields(cls):
        if "prefix" in f.metadata:
            found += settings_of(hints[f.name], scope=scope, _prefix=_prefix + f.metadata["prefix"],
                                 _path=(*_path, f.name))
            continue
        spec = f.metadata.get("setting")
        if spec is None or (scope is not None and spec["scope"] != scope):
            continue
        kind, optional, literal = _kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        name = spec["name"] or _prefix + f.name
        found.append(Setting(
            name=name, path=(*_path, f.name), kind=kind, default=default, help=spec["help"],
            label=spec["label"] or name.replace("_", " ").capitalize(), optional=optional,
            minimum=spec["minimum"], maximum=spec["maximum"], above=spec["above"],
            below=spec["below"], choices=spec["choices"] or literal, pattern=spec["pattern"],
            pattern_hint=spec["pattern_hint"],
            flag=spec["flag"] or "--" + name.replace("_", "-"), scope=spec["scope"]))
    return found


def check_values(settings: Iterable[Setting], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """{setting name: [message]} for every value its setting does not allow."""
    errors: dict[str, list[str]] = {}
    for s in settings:
        message = s.check(values.get(s.name, s.default))
        if message:
            errors[s.name] = [message]
    return errors


def config_from_values(cls: type, values: Mapping[str, Any], **extra: Any) -> Any:
    """Build `cls` (nested groups included) from flat setting values; missing ones keep their
    defaults. `extra` sets top-level fields that are not settings (e.g. `meta`)."""
    config = cls(**extra)
    for s in settings_of(cls):
        if s.name in values:
            target = config
            for part in s.path[:-1]:
                target = getattr(target, part)
            value = values[s.name]
            setattr(target, s.path[-1], tuple(value) if s.kind is tuple else value)
    return config


def add_arguments(parser: argparse.ArgumentParser, settings: Iterable[Setting]) -> None:
    """One option per setting: `--flag`, its type, choices, default and help."""
    for s in settings:
        text = s.help + (f" ({s.bounds_text()})" if s.minimum is not None or s.maximum is not None
                         else "")
        if s.kind is bool:
            parser.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction,
                                default=s.default, help=text)
            continue
        parser.add_argument(s.flag, dest=s.name, type=s.parse_text,
                            default=s.default, choices=s.choices or None,
                            help=f"{text}; default: {s.show(s.default) or 'none'}")


def values_from_args(settings: Iterable[Setting], args: argparse.Namespace | Mapping[str, Any]
                     ) -> dict[str, Any]:
    """The settings' values from parsed arguments (a Namespace or Django's options dict)."""
    source = vars(args) if isinstance(args, argparse.Namespace) else args
    return {s.name: source[s.name] for s in settings if s.name in source}
