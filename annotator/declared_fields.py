"""Form fields and API serializer fields built from declared settings.

alignment_core declares each training setting once, on its config dataclass (see
`alignment_core.training.settings`). The page's form and the API's input serializer are built
from those declarations here, so a new setting needs no form or serializer code, and both check
values with the declaration's own rule and message (the same the service applies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

from alignment_core.training.settings import Setting


def _validator(declared: Setting) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        message = declared.check(value)
        if message:
            raise ValidationError(message)

    return check


class _CommaSeparatedField(forms.CharField):
    """A tuple of names typed as "a, b, c"."""

    def __init__(self, *, declared: Setting, **kwargs: Any) -> None:
        self.declared = declared
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> tuple[str, ...]:
        return self.declared.parse_text(super().to_python(value) or "")

    def prepare_value(self, value: Any) -> str:
        return value if isinstance(value, str) else self.declared.show(value)


def form_field(declared: Setting, choice_labels: Mapping[str, str] | None = None
               ) -> forms.Field:
    """The Django form field for one setting (initial value = the declared default)."""
    common = {"label": declared.label, "help_text": declared.help[:1].upper() + declared.help[1:],
              "required": not declared.optional and declared.kind is not bool,
              "initial": declared.default, "validators": [_validator(declared)]}
    if declared.choices:
        labels = choice_labels or {}
        return forms.ChoiceField(choices=[(c, labels.get(c, c)) for c in declared.choices],
                                 **common)
    if declared.kind is tuple:
        return _CommaSeparatedField(declared=declared, **common)
    if declared.kind is bool:
        return forms.BooleanField(**common)
    if declared.kind is int:
        return forms.IntegerField(**common)
    if declared.kind is float:
        return forms.FloatField(**common)
    return forms.CharField(**common)


def form_fields(settings: Iterable[Setting], choice_labels: Mapping[str, str] | None = None
                ) -> dict[str, forms.Field]:
    return {s.name: form_field(s, choice_labels) for s in settings}


def serializer_field(declared: Setting) -> serializers.Field:
    """The DRF input field for one setting (optional, with the declared default)."""
    default = list(declared.default) if declared.kind is tuple else declared.default
    common = {"help_text": declared.help, "validators": [_validator(declared)],
              "default": (lambda: list(default)) if isinstance(default, list) else default}
    if declared.optional:
        common["allow_null"] = True
    if declared.choices:
        return serializers.ChoiceField(choices=list(declared.choices), **common)
    if declared.kind is tuple:
        return serializers.ListField(child=serializers.CharField(), **common)
    if declared.kind in (int, float):
        # Inclusive bounds also go into the OpenAPI schema (DRF's own check then runs after the
        # declaration's, whose message comes first).
        if declared.minimum is not None and not declared.above:
            common["min_value"] = declared.minimum
        if declared.maximum is not None and not declared.below:
            common["max_value"] = declared.maximum
    field_class = {int: serializers.IntegerField, float: serializers.FloatField,
                   bool: serializers.BooleanField}.get(declared.kind, serializers.CharField)
    return field_class(**common)


def serializer_fields(settings: Iterable[Setting]) -> dict[str, serializers.Field]:
    return {s.name: serializer_field(s) for s in settings}
