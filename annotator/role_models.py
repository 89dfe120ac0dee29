"""The one place that builds a project's models for a job: each role's generator and the critic.

The roles are alignment_core.endpoints.ROLES. What a role gets:

- learner: with no endpoint, the learner version in this process (LEARNER_MODEL plus the
  version's LoRA adapter), exactly as before endpoints existed; with an openai endpoint, the
  served base model, or the version's adapter registered on that server under
  `served_adapter(version).name` (the generator registers it again before each call, so a
  restarted server gets it back before the next request).
- critic_writer and attacker_lm: their own endpoint, else the learner (same version, same
  adapter, same server).
- critic_judge: its own endpoint, else no judge. A judge votes in the layered critic's blend.

Generators are built on first use and kept for the job; every one counts the tokens it spends,
so `usage()` tells a job what each role spent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alignment_core.endpoints import EndpointConfig, Generator, ServedAdapter, Usage, generator_for
from alignment_core.learner import Learner
from annotator.learner_runtime import loaded_for, local_learner
from annotator.models import LearnerVersion, Project
from annotator.selectors.endpoints import endpoint_configs

# A served model batches the requests in flight, so a job hands it several times its concurrency
# per checkpoint; fewer would leave the server idle while the last requests of a chunk finish.
REMOTE_CHUNK_PER_REQUEST_SLOT = 4
FALLS_BACK_TO_LEARNER = ("critic_writer", "attacker_lm")


def served_adapter(version: LearnerVersion) -> ServedAdapter | None:
    """How a server knows a version's adapter: a name unique to the version, and its directory
    (the server must see DATA_DIR at the same path). None for a base version."""
    adapter_dir = version.adapter_dir()
    if adapter_dir is None:
        return None
    return ServedAdapter(name=f"superalign-{version.project.slug}-{version.pk}"[:128],
                         path=str(adapter_dir))


class RoleModels:
    """A project's generators and critic, built once per job (pass `endpoints` to override the
    stored ones, e.g. in a benchmark)."""

    def __init__(self, project: Project,
                 endpoints: dict[str, EndpointConfig] | None = None) -> None:
        self.project = project
        self.endpoints = endpoint_configs(project=project) if endpoints is None else endpoints
        self._built: dict[tuple[str, int | None], Generator] = {}
        self._labels: dict[str, str] = {}

    def endpoint(self, role: str) -> EndpointConfig | None:
        """The endpoint the role's requests go to (after the fall-back to the learner's)."""
        if role in self.endpoints:
            return self.endpoints[role]
        return self.endpoints.get("learner") if role in FALLS_BACK_TO_LEARNER else None

    def is_remote(self, role: str) -> bool:
        endpoint = self.endpoint(role)
        return endpoint is not None and endpoint.kind == "openai"

    def chunk_size(self, role: str, batch_size: int) -> int:
        """Items per checkpoint for work done by `role`: the campaign batch for the in-process
        model, several requests per concurrency slot for a server."""
        endpoint = self.endpoint(role)
        if endpoint is None or endpoint.kind != "openai":
            return batch_size
        return max(batch_size, REMOTE_CHUNK_PER_REQUEST_SLOT * endpoint.max_concurrency)

    def generator(self, role: str, version: LearnerVersion | None = None) -> Generator:
        """The role's generator (kept: the same object on the next call)."""
        own = self.endpoints.get(role)
        uses_version = own is None and (role == "learner" or role in FALLS_BACK_TO_LEARNER)
        if uses_version and version is None:
            raise ValueError(f"The {role} answers as a learner version: pass the version.")
        key = (role, version.pk if uses_version else None)
        if key not in self._built:
            self._built[key], self._labels[role] = self._build(role, own, version)
        return self._built[key]

    def _build(self, role: str, own: EndpointConfig | None,
               version: LearnerVersion | None) -> tuple[Generator, str]:
        if own is not None and role != "learner":
            # A model of its own (a guard model, an unaligned attacker): no learner adapter.
            if own.kind == "local":
                return local_learner(own.model), f"in-process {own.model!r}"
            return generator_for(own), own.label
        learner = self.endpoints.get("learner")
        if learner is None:
            where = version.base_model + (f" + adapter of {version.name}"
                                          if version.adapter_path else "")
            return Learner(loaded_for(version)), f"in-process {where!r}"
        adapter = served_adapter(version)
        label = learner.label if adapter is None else (
            f"adapter {adapter.name!r} on {learner.label}")
        return generator_for(learner, adapter=adapter), label

    def judge(self, should_cancel: Callable[[], bool] | None = None):
        """The critic's judge as a voter, or None when the project has no judge endpoint."""
        endpoint = self.endpoints.get("critic_judge")
        if endpoint is None:
            return None
        from alignment_core.critic.judge import Judge, JudgeVoter

        judge = Judge(self.generator("critic_judge"), structured=endpoint.structured_output)
        return JudgeVoter(judge, should_cancel=should_cancel)

    def critic(self, version: LearnerVersion | None, *, name: str = "layered",
               writer: bool = True, judge: bool = True,
               should_cancel: Callable[[], bool] | None = None, **options: Any) -> Any:
        """The project's critic: its learned head, the writer (unless `writer=False`: verdicts
        only; `version` is then unused) and, for the layered critic, the judge as a voter
        (unless `judge=False`). `options` go to the critic (batch_size, max_new_tokens)."""
        from alignment_core.critic import LearnedHead, make_critic

        head_data = self.project.critic_head
        kwargs: dict[str, Any] = {"head": LearnedHead.from_dict(head_data) if head_data else None,
                                  **options}
        if name == "layered":
            kwargs["learner"] = self.generator("critic_writer", version) if writer else None
            voter = self.judge(should_cancel) if judge else None
            if voter is not None:
                kwargs["voters"] = [voter]
        return make_critic(name, **kwargs)

    def usage(self) -> dict[str, Usage]:
        """Tokens spent so far by each role's generators in this job."""
        spent: dict[str, Usage] = {}
        for (role, _), generator in self._built.items():
            total = spent.setdefault(role, Usage())
            total.add(generator.usage.prompt_tokens, generator.usage.completion_tokens,
                      generator.usage.requests)
        return spent

    def label(self, role: str) -> str:
        """What answered for the role, in words (a model and a URL; never a key)."""
        return self._labels.get(role, "")
