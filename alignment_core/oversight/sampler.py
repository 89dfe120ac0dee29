"""Which items an expert sees blind, and when a gold item is slipped into their queue.

Both decisions are hashes of stable facts, never draws from a running random generator, so a
reload, a resumed session, a second web worker or a rerun of the simulation gives the same
answer without storing anything first:

- blind: hash(project seed, expert, item) < blind share. Keyed per (expert, item), so two
  experts overlapping on an item may see it in different modes (a paired comparison), and every
  expert gets the same share.
- gold: hash(project seed, expert, position) < gold share, where `position` is how many
  items the expert has already decided in this project (skips included). Keying the gold slot
  by the item that would have come next does not work: after the gold answer that same item
  comes up again and would inject gold again, forever. The position advances exactly once per
  decision, is unchanged by a reload, and an undo steps it back so the same slot comes again.
- which gold item: the expert's unanswered gold items ordered by hash(project seed, expert,
  item), so experts meet gold items in different orders and a reload picks the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) determined by `parts` alone (BLAKE2b, so the same on every machine and
    every Python process, unlike `hash()`)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check_share(share: float, name: str) -> None:
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must lie between 0 and 1, got {share}")


def is_blind(*, seed: int, expert_id: str, item_id: str, share: float) -> bool:
    """Whether `expert_id` reviews `item_id` without any critic content."""
    _check_share(share, "blind share")
    return unit_hash(seed, "blind", expert_id, item_id) < share


def is_gold_slot(*, seed: int, expert_id: str, position: int, share: float) -> bool:
    """Whether the expert's item number `position` (0-based count of their decisions so far in
    the project) is a gold item."""
    _check_share(share, "gold share")
    if position < 0:
        raise ValueError("position must not be negative")
    return unit_hash(seed, "gold", expert_id, position) < share


def choose_gold(*, seed: int, expert_id: str, candidates: Iterable[str]) -> str | None:
    """The gold item to serve: the first of `candidates` in this expert's hash order, or None.

    The caller passes gold items this expert has neither answered as gold nor reviewed before
    (an item must never reach one expert twice), so once they are used up no gold is served.
    """
    ordered = sorted(candidates, key=lambda item: (unit_hash(seed, "order", expert_id, item), item))
    return ordered[0] if ordered else None


@dataclass(frozen=True)
class Serving:
    """What to show: `item_id` (the queued item, or the gold item put in its place), whether it
    is gold (never shown to the expert) and whether it is served blind."""

    item_id: str
    gold: bool
    blind: bool

    def to_dict(self) -> dict:
        return asdict(self)


def plan_serving(*, seed: int, expert_id: str, position: int, next_item_id: str | None,
                 gold_candidates: Iterable[str], blind_share: float,
                 gold_share: float) -> Serving | None:
    """Decide the expert's next item: a gold item when this slot is a gold slot and one is left,
    otherwise the queue's next item; None when there is neither. Blind applies to both alike,
    so a gold item looks like any other item in the mode it is served in."""
    item_id, gold = next_item_id, False
    if is_gold_slot(seed=seed, expert_id=expert_id, position=position, share=gold_share):
        chosen = choose_gold(seed=seed, expert_id=expert_id, candidates=gold_candidates)
        if chosen is not None:
            item_id, gold = chosen, True
    if item_id is None:
        return None
    return Serving(item_id=item_id, gold=gold,
                   blind=is_blind(seed=seed, expert_id=expert_id, item_id=item_id,
                                  share=blind_share))
