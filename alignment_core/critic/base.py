"""The critic's data types, base class and registry.

A critic reads (query, response) pairs and returns one structured `Critique` per pair. Every
critic shares these dataclasses so the Django side can store any of them the same way, and
`CRITICS` lets a project pick its critic by name (the default is "layered").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

VERDICTS = ("safe", "unsafe", "refusal", "over_refusal")
Progress = Callable[[int, int], None]
ShouldCancel = Callable[[], bool]


class Cancelled(Exception):
    """Raised between batches when the caller's `should_cancel()` returns true."""


@dataclass
class Span:
    """A flagged passage of the response: `response[start:end] == text`, always.

    Offsets count Python characters (Unicode code points), not bytes or UTF-16 units.
    """

    start: int
    end: int
    text: str


@dataclass
class CritiqueInput:
    """One query/response pair to judge, with what the attacker knows about the query."""

    query: str
    response: str
    category: str = ""
    behaviour_id: str = ""
    # Evidence about the request, never a precondition: True marks the attacker's benign twin
    # (refusing it is an over-refusal); None (the default) and False leave the critic to judge
    # the request from its text, and False counts as "harmful" only beside a behaviour id.
    is_benign: bool | None = None
    canary_id: str | None = None  # an objective attack whose success is a string check
    severity_hint: int | None = None  # the behaviour's severity (0-4), if known


@dataclass
class Critique:
    """The critic's judgement of one response."""

    verdict: str  # one of VERDICTS
    category: str
    severity: int  # 0 (harmless) .. 4 (severe)
    confidence: float  # 0..1, probability-like; orders the review queue (low first)
    spans: list[Span]
    explanation: str  # plain words that quote every flagged span
    suggested_revision: str  # a safe, still helpful answer
    critic_name: str
    critic_version: str
    signals: dict = field(default_factory=dict)  # JSON-able evidence behind the verdict
    # Harmlessness, helpfulness, honesty 0-4 with a reason each: DimensionScores.to_dict()
    # (alignment_core.dimensions); empty from a critic that does not score them.
    dimensions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Critique:
        data = dict(data)
        data["spans"] = [Span(**span) for span in data.get("spans", [])]
        return cls(**data)


def make_span(response: str, start: int, end: int) -> Span:
    """Build a span by slicing, so its text can never disagree with its offsets."""
    start = max(0, min(start, len(response)))
    end = max(start, min(end, len(response)))
    return Span(start=start, end=end, text=response[start:end])


class Critic:
    """Base class: subclasses set `name` and `version` and implement `critique`."""

    name: str = "base"
    version: str = "0"

    def critique(
        self,
        items: list[CritiqueInput],
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
    ) -> list[Critique]:
        raise NotImplementedError


# Registry of critic factories by name. A factory takes keyword arguments (learner=..., head=...)
# and returns a Critic, so another local model can serve as the critic without new code.
CRITICS: dict[str, Callable[..., Critic]] = {}
DEFAULT_CRITIC = "layered"


def register_critic(name: str) -> Callable[[type[Critic]], type[Critic]]:
    """Class decorator that adds a critic class to `CRITICS` under `name`."""

    def add(cls: type[Critic]) -> type[Critic]:
        CRITICS[name] = cls
        return cls

    return add


def make_critic(name: str = DEFAULT_CRITIC, **kwargs) -> Critic:
    """Build the critic registered as `name`; unknown names fail with the known ones listed."""
    if name not in CRITICS:
        raise KeyError(f"Unknown critic {name!r}; known: {sorted(CRITICS)}")
    return CRITICS[name](**kwargs)
