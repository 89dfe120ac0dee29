"""Reads for exports: the curated rows of a project (or a snapshot), streamed in id order.

Memory stays flat however many rows there are: rows are read with keyset pagination (id > last,
LIMIT n) as plain tuples from one SQL join, and the reviews of each chunk are fetched with one
range query. Each row is a dict: prompt, prompt_messages (a chat list or None), chosen, rejected,
plus the provenance columns (see PROVENANCE_COLUMNS).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet

from annotator.models import (
    DatasetSnapshot, ItemState, Project, Review, ReviewAction, ReviewItem, SnapshotExample,
)

CHUNK = 2000
CURATED = (ItemState.DONE, ItemState.AUTO_ACCEPTED)
# Which rows a format takes: "pairs" (chosen differs from the learner's original), "sft" (every
# curated answer) or "kto" (every curated answer as desirable, every differing original as not).
SELECTION = {"trl_preference": "pairs", "trl_conversational": "pairs", "csv": "pairs",
             "parquet": "pairs", "sft_chat": "sft", "kto": "kto"}
PROVENANCE_COLUMNS = ("item_id", "review_ids", "expert_ids", "critic", "learner_version",
                      "campaign", "strategy", "category", "verdict", "agreement", "adjudicated",
                      "curated_at", "created_at")
SNAPSHOT_COLUMNS = ("snapshot_id", "example_id", "split")

_ITEM_FIELDS = (
    "id", "final_response", "final_verdict", "adjudicated", "curated_at", "created_at",
    "critique__critic_name", "critique__verdict", "critique__response__text",
    "critique__response__learner_version__name", "critique__response__attack__text",
    "critique__response__attack__system_prompt", "critique__response__attack__turns",
    "critique__response__attack__strategy", "critique__response__attack__category",
    "critique__response__attack__campaign__name",
)


def pseudonym(user_id: int, _cache: dict[int, str] = {}) -> str:  # noqa: B006 (memo)
    """A stable pseudonymous expert id: HMAC-SHA256 of the user id under SECRET_KEY, truncated.

    Exported files never name people; the same expert gets the same id in every export (so
    agreement per expert can still be studied), and nobody without the key can reverse it.
    """
    if user_id not in _cache:
        digest = hmac.new(settings.SECRET_KEY.encode(), f"expert:{user_id}".encode(), hashlib.sha256)
        _cache[user_id] = "x" + digest.hexdigest()[:15]
    return _cache[user_id]


def chat_prompt(text: str, system_prompt: str = "", turns: Any = None) -> list[dict[str, str]]:
    """The prompt as chat messages: optional system prompt, earlier turns, then the attack."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if isinstance(turns, list):
        messages += [{"role": str(t["role"]), "content": str(t["content"])} for t in turns
                     if isinstance(t, dict) and "role" in t and "content" in t]
    messages.append({"role": "user", "content": text})
    return messages


def curated_items(*, project: Project, filters: dict, selection: str) -> QuerySet[ReviewItem]:
    """The project's curated items matching the (already validated) filters."""
    items = ReviewItem.objects.filter(project=project, state__in=CURATED).exclude(final_response="")
    if not filters.get("include_held_out"):
        # Held-out campaigns measure the learner; their labels never become training data.
        items = items.exclude(critique__response__attack__campaign__held_out=True)
    if "campaign" in filters:
        items = items.filter(critique__response__attack__campaign_id=filters["campaign"])
    if filters.get("category"):
        items = items.filter(critique__response__attack__category=filters["category"])
    if filters.get("strategy"):
        items = items.filter(critique__response__attack__strategy=filters["strategy"])
    if filters.get("verdict"):
        items = items.filter(final_verdict=filters["verdict"])
    if filters.get("adjudicated_only"):
        items = items.filter(adjudicated=True)
    if selection == "pairs":
        items = items.filter(~Q(final_response=F("critique__response__text")))
    return items


def snapshot_examples(*, snapshot: DatasetSnapshot, filters: dict,
                      kind: str) -> QuerySet[SnapshotExample]:
    examples = snapshot.examples.filter(kind=kind)
    for key in ("category", "strategy", "split"):
        if filters.get(key):
            examples = examples.filter(**{key: filters[key]})
    return examples


def _review_summaries(item_ids: list[int], verdicts: dict[int, tuple[str, str]],
                      by_range: bool = True) -> dict:
    """{item_id: (review_ids, expert_ids, agreement)} for the items, in one query.

    Live items come in id order, so one id range query covers a chunk (reviews of items outside
    the selection are skipped); a snapshot's items can be sparse, so they are looked up by id.

    Decisive reviews are those not skipped, not undo records and not undone. Agreement is the
    share of decisive reviews whose verdict is the item's final verdict (None without reviews).
    """
    if not item_ids:
        return {}
    reviews = (Review.objects.filter(item_id__gte=min(item_ids), item_id__lte=max(item_ids))
               if by_range else Review.objects.filter(item_id__in=item_ids))
    rows = list(reviews.order_by("item_id", "id")
                .values_list("item_id", "id", "expert_id", "action", "final_verdict", "undoes_id"))
    undone = {row[5] for row in rows if row[5] is not None}
    out: dict[int, tuple[list[int], list[str], float | None]] = {}
    for item_id, review_id, expert_id, action, verdict, undoes in rows:
        if item_id not in verdicts or undoes is not None or review_id in undone:
            continue
        if action in (ReviewAction.SKIP, ReviewAction.UNDO):
            continue
        entry = out.setdefault(item_id, ([], [], []))
        entry[0].append(review_id)
        entry[1].append(pseudonym(expert_id))
        entry[2].append(verdict or verdicts[item_id][1])
    summaries = {}
    for item_id, (review_ids, experts, given) in out.items():
        final = verdicts[item_id][0] or max(set(given), key=given.count)
        summaries[item_id] = (review_ids, experts, given.count(final) / len(given))
    return summaries


def item_rows(*, items: QuerySet[ReviewItem], min_agreement: float | None = None,
              start_after: int = 0) -> Iterator[dict]:
    """Stream rows for curated items (id order), with provenance; flat memory."""
    last = start_after
    base = items.order_by("id").values_list(*_ITEM_FIELDS)
    while True:
        chunk = list(base.filter(id__gt=last)[:CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        summaries = _review_summaries([row[0] for row in chunk],
                                      {row[0]: (row[2], row[7]) for row in chunk})
        for (item_id, chosen, verdict, adjudicated, curated_at, created_at, critic, _critic_verdict,
             rejected, learner, text, system_prompt, turns, strategy, category,
             campaign) in chunk:
            review_ids, experts, agreement = summaries.get(item_id, ((), (), None))
            if min_agreement is not None and (agreement is None or agreement < min_agreement):
                continue
            yield {
                "prompt": text,
                "prompt_messages": chat_prompt(text, system_prompt, turns)
                if (system_prompt or turns) else None,
                "chosen": chosen, "rejected": rejected,
                "item_id": item_id, "review_ids": list(review_ids), "expert_ids": list(experts),
                "critic": critic, "learner_version": learner or "", "campaign": campaign or "",
                "strategy": strategy, "category": category, "verdict": verdict,
                "agreement": agreement, "adjudicated": adjudicated, "curated_at": curated_at,
                "created_at": created_at,
            }


def example_rows(*, examples: QuerySet[SnapshotExample]) -> Iterator[dict]:
    """Stream rows of a snapshot's frozen examples (id order), with provenance."""
    fields = ("id", "prompt", "prompt_messages", "chosen", "rejected", "review_item_id",
              "category", "strategy", "split", "snapshot_id",
              "review_item__critique__critic_name", "review_item__critique__verdict",
              "review_item__critique__response__learner_version__name",
              "review_item__critique__response__attack__campaign__name",
              "review_item__final_verdict", "review_item__adjudicated",
              "review_item__curated_at", "review_item__created_at")
    base = examples.order_by("id").values_list(*fields)
    last = 0
    while True:
        chunk = list(base.filter(id__gt=last)[:CHUNK])
        if not chunk:
            return
        last = chunk[-1][0]
        item_verdicts = {row[5]: (row[14] or "", row[11] or "") for row in chunk if row[5]}
        summaries = {}
        if item_verdicts:
            # Snapshot items need not be contiguous ids: look them up per item id list.
            ids = sorted(item_verdicts)
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                summaries.update(_review_summaries(part, {i: item_verdicts[i] for i in part},
                                                   by_range=False))
        for (example_id, prompt, messages, chosen, rejected, item_id, category, strategy, split,
             snapshot_id, critic, _critic_verdict, learner, campaign, verdict, adjudicated,
             curated_at, created_at) in chunk:
            review_ids, experts, agreement = summaries.get(item_id, ((), (), None))
            yield {
                "prompt": prompt, "prompt_messages": messages or None,
                "chosen": chosen, "rejected": rejected,
                "item_id": item_id, "review_ids": list(review_ids), "expert_ids": list(experts),
                "critic": critic or "", "learner_version": learner or "",
                "campaign": campaign or "", "strategy": strategy, "category": category,
                "verdict": verdict or "", "agreement": agreement, "adjudicated": bool(adjudicated),
                "curated_at": curated_at, "created_at": created_at,
                "snapshot_id": snapshot_id, "example_id": example_id, "split": split,
            }
