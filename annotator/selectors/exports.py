"""Reads for exports: the curated rows of a project (or a snapshot), streamed in id order.

Memory stays flat however many rows there are: rows come as plain tuples from one SQL join, a
chunk at a time in id order, and the reviews of each chunk are fetched with one more query. Each row is a dict: prompt, prompt_messages (a chat list or None), chosen, rejected,
plus the provenance columns (see PROVENANCE_COLUMNS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import F, Func, Q, QuerySet, TextField

from alignment_core.chat import chat_messages
from alignment_core.dimensions import DIMENSIONS
from annotator.export_filters import EXPORT_FILTERS
from annotator.models import (
    CURATED_STATES,
    DECISIONS,
    DatasetSnapshot,
    Project,
    Review,
    ReviewItem,
    SnapshotExample,
)

CHUNK = 2000
# Plain strings: the summary loop below runs once per review of a million-row export.
_DECISION_VALUES = frozenset(action.value for action in DECISIONS)
# Which rows a format takes: "pairs" (chosen differs from the learner's original), "sft" (every
# curated answer) or "kto" (every curated answer as desirable, every differing original as not).
SELECTION = {"trl_preference": "pairs", "trl_conversational": "pairs", "csv": "pairs",
             "parquet": "pairs", "sft_chat": "sft", "kto": "kto"}
# The learner's original answer as curated: its harmlessness / helpfulness / honesty (0-4) and,
# as in BeaverTails, whether it is safe (the final verdict is anything but unsafe).
LABEL_COLUMNS = (*DIMENSIONS, "is_response_safe")
PROVENANCE_COLUMNS = ("item_id", "review_ids", "expert_ids", "critic", "learner_version",
                      "campaign", "strategy", "category", "verdict", *LABEL_COLUMNS, "agreement",
                      "adjudicated", "curated_at", "created_at")
SNAPSHOT_COLUMNS = ("snapshot_id", "example_id", "split", "label_source", "label_confidence")

_ITEM_FIELDS = (
    "id", "final_response", "final_verdict", "adjudicated", "curated_at", "created_at",
    "critique__critic_name", "critique__verdict", "critique__response__text",
    "critique__response__learner_version__name", "critique__response__attack__text",
    "critique__response__attack__system_prompt", "critique__response__attack__turns",
    "critique__response__attack__strategy", "critique__response__attack__category",
    "critique__response__attack__campaign__name", "final_dimensions", "critique__dimensions",
)


_PSEUDONYMS: dict[int, str] = {}


def pseudonym(user_id: int) -> str:
    """A stable pseudonymous expert id: HMAC-SHA256 of the user id under SECRET_KEY, truncated.

    Exported files never name people; the same expert gets the same id in every export (so
    agreement per expert can still be studied), and nobody without the key can reverse it.
    """
    name = _PSEUDONYMS.get(user_id)
    if name is None:
        digest = hmac.new(settings.SECRET_KEY.encode(), f"expert:{user_id}".encode(), hashlib.sha256)
        name = _PSEUDONYMS[user_id] = "x" + digest.hexdigest()[:15]
    return name


def curated_items(*, project: Project, filters: dict,
                  selection: str = "sft") -> QuerySet[ReviewItem]:
    """The project's curated items matching the (already validated) export filters; with
    selection "pairs", only those whose curated answer differs from the learner's."""
    items = ReviewItem.objects.filter(project=project, state__in=CURATED_STATES
                                      ).exclude(final_response="")
    if not filters.get("include_held_out"):
        # Held-out campaigns measure the learner; their labels never become training data.
        items = items.exclude(critique__response__attack__campaign__held_out=True)
    for spec in EXPORT_FILTERS:
        if spec.item_lookup and filters.get(spec.key) not in (None, ""):
            items = items.filter(**{spec.item_lookup: filters[spec.key]})
    if selection == "pairs":
        items = items.filter(~Q(final_response=F("critique__response__text")))
    return items


def snapshot_examples(*, snapshot: DatasetSnapshot, filters: dict,
                      kind: str) -> QuerySet[SnapshotExample]:
    examples = snapshot.examples.filter(kind=kind)
    for spec in EXPORT_FILTERS:
        if spec.example_lookup and filters.get(spec.key):
            examples = examples.filter(**{spec.example_lookup: filters[spec.key]})
    return examples


class _IsoText(Func):
    """SQLite: a stored UTC timestamp ("2026-01-02 03:04:05.678901") as ISO 8601 text with its
    offset; NULL stays NULL."""

    template = "(REPLACE(%(expressions)s, ' ', 'T') || '+00:00')"
    output_field = TextField()


def _stream(queryset: QuerySet, fields: tuple[str, ...]) -> Iterator[list[tuple]]:
    """Yield chunks of raw row tuples (the first field must be "id"), in id order.

    The SQL comes from the ORM (so filters and joins stay ORM code), but rows skip Django's
    per-value converters, which cost more than the query itself at a million rows. Each chunk
    is its own finished query (keyset: id > last, LIMIT n), so no statement stays open between
    chunks: on SQLite an open read would hold back the job's progress writes (and with them
    every other writer) until the export ended. Memory holds one chunk.
    """
    connection = connections[queryset.db]
    if connection.vendor == "sqlite":
        # SQLite's driver parses every datetime column into a datetime object (Django's
        # converter), which costs more than the join: have SQLite write the ISO 8601 text.
        casts = {f"_{name}_text": _IsoText(name) for name in fields
                 if name.endswith(("curated_at", "created_at"))}
        queryset = queryset.annotate(**casts)
        fields = tuple(f"_{name}_text" if f"_{name}_text" in casts else name for name in fields)
    ordered = queryset.order_by("id").values_list(*fields)
    last = 0
    while True:
        page = ordered.filter(id__gt=last)[:CHUNK]
        sql, params = page.query.get_compiler(using=queryset.db).as_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            chunk = cursor.fetchall()
        if not chunk:
            return
        last = chunk[-1][0]
        yield chunk


def _iso(value: Any) -> str | None:
    """A database timestamp as ISO 8601 in UTC (Django stores UTC). On SQLite the query already
    wrote the text; other databases hand back datetimes, aware or naive."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat() if value.tzinfo is not None else value.isoformat() + "+00:00"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _label_columns(verdict: str, final: Any, critic: Any) -> dict:
    """LABEL_COLUMNS of one row: the item's final dimensions (the critic's for an item curated
    before they were recorded; None where neither has them)."""
    scores = _json(final) or _json(critic) or {}
    return {**{name: scores.get(name) for name in DIMENSIONS},
            "is_response_safe": verdict != "unsafe" if verdict else None}


def _review_summaries(item_ids: list[int], verdicts: dict[int, str],
                      by_range: bool = True) -> dict:
    """{item_id: (review_ids, expert_ids, agreement)} for the items, in one query.

    Live items come in id order, so one id range query covers a chunk (reviews of items outside
    the selection are skipped); a snapshot's items can be sparse, so they are looked up by id.
    Decisions are approvals, edits and rejections that were not undone (skips and undos say
    nothing about the verdict; gold probes never count for the item); agreement is the share of
    them whose verdict is the item's final verdict, None when nobody reviewed the item (as in
    annotator.services.snapshots).
    """
    if not item_ids:
        return {}
    reviews = (Review.objects.filter(item_id__gte=min(item_ids), item_id__lte=max(item_ids))
               if by_range else Review.objects.filter(item_id__in=item_ids))
    fields = ("item_id", "id", "expert_id", "action", "final_verdict", "undoes_id", "gold_probe")
    sql, params = reviews.order_by("item_id", "id").values_list(*fields).query.sql_with_params()
    with connections[reviews.db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    undone = {row[5] for row in rows if row[5] is not None}
    grouped: dict[int, tuple[list[int], list[str], int]] = {}
    names = _PSEUDONYMS
    for item_id, review_id, expert_id, action, verdict, _undoes, gold_probe in rows:
        if action not in _DECISION_VALUES or item_id not in verdicts or gold_probe:
            continue
        if undone and review_id in undone:
            continue
        entry = grouped.get(item_id)
        if entry is None:
            entry = grouped[item_id] = ([], [], [0])
        entry[0].append(review_id)
        entry[1].append(names.get(expert_id) or pseudonym(expert_id))
        if verdict == verdicts[item_id]:
            entry[2][0] += 1
    return {item_id: (review_ids, experts, agreeing[0] / len(review_ids))
            for item_id, (review_ids, experts, agreeing) in grouped.items()}


_NO_REVIEWS = ([], [], None)  # shared; rows are only read, never changed


def item_rows(*, items: QuerySet[ReviewItem], min_agreement: float | None = None) -> Iterator[dict]:
    """Stream rows for curated items (id order), with provenance; flat memory."""
    text_times = connections[items.db].vendor == "sqlite"  # see _stream
    for chunk in _stream(items, _ITEM_FIELDS):
        summaries = _review_summaries([row[0] for row in chunk],
                                      {row[0]: row[2] for row in chunk})
        for (item_id, chosen, verdict, adjudicated, curated_at, created_at, critic, _critic_verdict,
             rejected, learner, text, system_prompt, turns, strategy, category,
             campaign, final_dimensions, critic_dimensions) in chunk:
            review_ids, experts, agreement = summaries.get(item_id, _NO_REVIEWS)
            if min_agreement is not None and (agreement is None or agreement < min_agreement):
                continue
            yield {
                "prompt": text, "chosen": chosen, "rejected": rejected,
                "item_id": item_id, "review_ids": review_ids, "expert_ids": experts,
                "critic": critic, "learner_version": learner or "", "campaign": campaign or "",
                "strategy": strategy, "category": category, "verdict": verdict,
                **_label_columns(verdict, final_dimensions, critic_dimensions),
                "agreement": agreement, "adjudicated": bool(adjudicated),
                "curated_at": curated_at if text_times else _iso(curated_at),
                "created_at": created_at if text_times else _iso(created_at),
                "prompt_messages": chat_messages(text, system_prompt, _json(turns))
                if (system_prompt or turns) else None,
            }


def example_rows(*, examples: QuerySet[SnapshotExample]) -> Iterator[dict]:
    """Stream rows of a snapshot's frozen examples (id order), with provenance."""
    fields = ("id", "prompt", "prompt_messages", "chosen", "rejected", "review_item_id",
              "category", "strategy", "split", "snapshot_id",
              "review_item__critique__critic_name", "review_item__critique__verdict",
              "review_item__critique__response__learner_version__name",
              "review_item__critique__response__attack__campaign__name",
              "review_item__final_verdict", "review_item__adjudicated",
              "review_item__curated_at", "review_item__created_at", "label_source",
              "source_confidence", "review_item__final_dimensions",
              "review_item__critique__dimensions")
    for chunk in _stream(examples, fields):
        item_verdicts = {row[5]: row[14] or "" for row in chunk if row[5]}
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
             curated_at, created_at, label_source, label_confidence, final_dimensions,
             critic_dimensions) in chunk:
            review_ids, experts, agreement = summaries.get(item_id, _NO_REVIEWS)
            yield {
                "prompt": prompt, "chosen": chosen, "rejected": rejected,
                "item_id": item_id, "review_ids": review_ids, "expert_ids": experts,
                "critic": critic or "", "learner_version": learner or "",
                "campaign": campaign or "", "strategy": strategy, "category": category,
                "verdict": verdict or "",
                **_label_columns(verdict or "", final_dimensions, critic_dimensions),
                "agreement": agreement, "adjudicated": bool(adjudicated),
                "curated_at": _iso(curated_at), "created_at": _iso(created_at),
                "snapshot_id": snapshot_id, "example_id": example_id, "split": split,
                "label_source": label_source, "label_confidence": label_confidence,
                "prompt_messages": _json(messages) or None,
            }
