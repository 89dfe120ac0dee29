"""The one input shape of the oversight figures: an expert's verdict on one item.

The Django side builds these from its Review rows (and gold flags); the benchmark builds them
from simulated experts. Everything in `alignment_core.oversight` reads them and returns plain
dataclasses whose `to_dict()` is JSON-able.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alignment_core.critic.base import VERDICTS


@dataclass(frozen=True)
class ExpertVerdict:
    """One expert's final verdict on one item, as recorded when they decided.

    `critic_verdict` is what the critic said about the item whether or not the expert saw it:
    on a blind review it was hidden, and keeping it lets over-trust be compared with the rate
    at which blind experts land on a wrong critic verdict by themselves.
    """

    item_id: str
    expert_id: str
    verdict: str  # one of VERDICTS
    blind: bool = False  # served without the critic's verdict, explanation and revision
    seconds: float | None = None  # time on the item; None where it was not measured
    critic_verdict: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"Unknown verdict {self.verdict!r}; expected one of {VERDICTS}")
        if self.critic_verdict is not None and self.critic_verdict not in VERDICTS:
            raise ValueError(f"Unknown critic verdict {self.critic_verdict!r}")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("seconds must not be negative")


def check_labels(labels: Mapping[str, str], what: str) -> None:
    """Raise a ValueError naming the first item whose label is not a verdict."""
    for item_id, verdict in labels.items():
        if verdict not in VERDICTS:
            raise ValueError(f"{what} label of item {item_id!r} is {verdict!r}; "
                             f"expected one of {VERDICTS}")


def check_unique(verdicts: Iterable[ExpertVerdict]) -> None:
    """One verdict per (item, expert): the review flow never serves an item twice to one expert,
    and a second row would count one expert's opinion twice in every figure."""
    seen: set[tuple[str, str]] = set()
    for v in verdicts:
        key = (v.item_id, v.expert_id)
        if key in seen:
            raise ValueError(f"Expert {v.expert_id!r} has two verdicts on item {v.item_id!r}")
        seen.add(key)
