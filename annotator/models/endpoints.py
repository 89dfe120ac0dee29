"""Where each role's model runs, per project: the stored form of alignment_core's EndpointConfig.

A project without an endpoint for a role keeps the built-in behaviour (the in-process learner
version; the learner also writes the critic's revisions and the attacker's LM attacks; no judge).
The fields are EndpointConfig's, one for one, with its defaults; `config()` builds the config
and `clean()` runs its `validate()`. An API key is never a field: `api_key_env` names the
environment variable the workers read it from at request time.
"""

from __future__ import annotations

import re
from dataclasses import fields

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from alignment_core.endpoints.config import KINDS, ROLES, EndpointConfig

_DEFAULTS = EndpointConfig()
# The stored fields, in EndpointConfig's order: the API and the admin list them from here.
ENDPOINT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EndpointConfig))
ROLE_LABELS = {"learner": "Learner", "critic_writer": "Critic writer",
               "critic_judge": "Critic judge", "attacker_lm": "Attacker LM"}
# The fields' choices, named once so the API schema can name their enums (settings.py).
ROLE_CHOICES = [(role, ROLE_LABELS[role]) for role in ROLES]
KIND_CHOICES = [(kind, kind) for kind in KINDS]
# What a role without an endpoint uses (the label the API and the pages show for it).
DEFAULT_LABELS = {
    "learner": "default: the learner version in the worker process (LEARNER_MODEL + adapter)",
    "critic_writer": "default: the learner (its model and adapter, wherever it runs)",
    "critic_judge": "default: no judge (the critic's built-in layers decide alone)",
    "attacker_lm": "default: the learner (its model and adapter, wherever it runs)",
}
# Environment variables are named in capitals by convention; insisting on it also stops the
# commonest slip, a key (sk-..., hf_..., mostly lower case) pasted where its variable's name goes.
_KEY_VARIABLE_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ModelEndpoint(models.Model):
    """One role's model for one project: in-process (`local`) or an OpenAI-compatible server."""

    project = models.ForeignKey("annotator.Project", on_delete=models.CASCADE,
                                related_name="endpoints")
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=_DEFAULTS.kind,
                            help_text="local: in this worker process; openai: any "
                            "OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Ollama).")
    model = models.CharField(max_length=500, default=_DEFAULTS.model,
                             help_text="local: 'bundled' or a model directory on the workers; "
                             "openai: the served model name (vLLM's --served-model-name).")
    base_url = models.CharField(max_length=500, blank=True, default=_DEFAULTS.base_url,
                                help_text="openai: the API root, e.g. http://gpu-host:8001/v1")
    api_key_env = models.CharField(
        max_length=100, blank=True, default=_DEFAULTS.api_key_env,
        help_text="The NAME of the environment variable that holds the API key on the workers "
        "(e.g. VLLM_API_KEY), never the key itself; empty for a server without a key.")
    max_concurrency = models.PositiveIntegerField(
        default=_DEFAULTS.max_concurrency,
        validators=[MinValueValidator(1), MaxValueValidator(512)],
        help_text="openai: requests in flight at once (the server batches them).")
    timeout_s = models.FloatField(default=_DEFAULTS.timeout_s,
                                  help_text="openai: seconds per request.")
    max_retries = models.PositiveSmallIntegerField(
        default=_DEFAULTS.max_retries, validators=[MaxValueValidator(10)],
        help_text="openai: extra tries on 429, 5xx, timeouts and refused connections.")
    structured_output = models.BooleanField(
        default=_DEFAULTS.structured_output,
        help_text="openai: the server constrains output to a JSON schema (vLLM, SGLang); "
        "used by the critic judge.")
    defaults = models.JSONField(default=dict, blank=True,
                                help_text='Extra request fields, e.g. {"repetition_penalty": 1.1}.')
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "role"]
        constraints = [
            models.UniqueConstraint(fields=["project", "role"], name="endpoint_one_per_role"),
            models.CheckConstraint(condition=models.Q(role__in=list(ROLES)),
                                   name="endpoint_role_valid"),
            models.CheckConstraint(condition=models.Q(kind__in=list(KINDS)),
                                   name="endpoint_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project} · {self.get_role_display()}: {self.config().label}"

    def config(self) -> EndpointConfig:
        """The plain config every generator is built from (holds the key's variable name only)."""
        return EndpointConfig.from_dict({name: getattr(self, name) for name in ENDPOINT_FIELDS})

    def clean(self) -> None:
        if self.role == "learner" and self.kind == "local":
            raise ValidationError({"kind": (
                "The learner already runs in this process from its learner version (the base "
                "model in LEARNER_MODEL plus the version's adapter); give it an endpoint only to "
                "serve it elsewhere (kind openai), or delete the endpoint to go back.")})
        if self.api_key_env and not _KEY_VARIABLE_RE.match(self.api_key_env):
            raise ValidationError({"api_key_env": (
                "Name the environment variable that holds the key, in capitals (e.g. "
                "VLLM_API_KEY); the key itself is never stored.")})
        if self.structured_output and self.kind != "openai":
            raise ValidationError({"structured_output": (
                "Structured output needs a server (kind openai) that honours response_format.")})
        try:
            self.config().validate()
        except (TypeError, ValueError) as error:
            raise ValidationError(str(error)) from None
