"""Reads of the review loop: the item view (highlights, diff), progress, agreement, adjudication.

Everything here returns plain text pieces; templates escape each piece and add the markup
(<mark class="flag">, <ins>, <del>) around it, so model output is never marked safe.
"""

from __future__ import annotations

import difflib
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from alignment_core.dimensions import ANCHORS, DIMENSIONS
from alignment_core.evaluation import cohen_kappa, krippendorff_alpha
from annotator.models import (
    DECISIONS,
    UNDOABLE,
    ItemState,
    Project,
    Review,
    ReviewAction,
    ReviewAssignment,
    ReviewItem,
)

# Counting 100k pending items on every decision costs more than the rest of the request, and
# "items left" does not need to be exact to the second.
ITEMS_LEFT_CACHE_SECONDS = 10


@dataclass(frozen=True)
class Segment:
    text: str
    flagged: bool = False


@dataclass(frozen=True)
class DimensionRow:
    """One dimension as the assisted view shows it: the critic's score, why, and the scale."""

    name: str
    score: int
    why: str
    anchors: tuple[tuple[int, str], ...]


def dimension_rows(critique) -> list[DimensionRow]:
    scores = critique.scores
    reasons = scores.get("reasons") or {}
    return [DimensionRow(name=name, score=int(scores[name]),
                         why=str(reasons.get(name, "")).partition(": ")[2],
                         anchors=tuple(enumerate(ANCHORS[name])))
            for name in DIMENSIONS]


@dataclass(frozen=True)
class DiffPiece:
    kind: str  # "equal" | "insert" | "delete"
    text: str


def highlight_segments(text: str, spans: list | None) -> list[Segment]:
    """Split `text` into plain and flagged pieces from the critic's character spans.

    Spans come from a model and are not trusted: non-integers and out-of-range offsets are
    dropped or clamped, and overlapping spans are merged.
    """
    # 1. Clean the spans: integer offsets, clamped to the text, non-empty.
    ranges = []
    for span in spans or []:
        if not isinstance(span, dict):
            continue
        start, end = span.get("start"), span.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        if end > start:
            ranges.append((start, end))
    # 2. Merge overlapping or touching spans.
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    # 3. Cut the text at the span boundaries.
    segments, pos = [], 0
    for start, end in merged:
        if start > pos:
            segments.append(Segment(text[pos:start]))
        segments.append(Segment(text[start:end], flagged=True))
        pos = end
    if pos < len(text) or not segments:
        segments.append(Segment(text[pos:]))
    return segments


_TOKENS = re.compile(r"\s+|[^\s]+")
SLIGHT_CHARS = 3  # equal text this short (spaces, "a", "to", "the") between changes joins them
MIN_SHARED = 0.5  # below this share of the shorter text's words in common: a wholesale rewrite


def word_diff(before: str, after: str) -> list[DiffPiece]:
    """A word-level diff (whitespace kept as its own tokens) between two texts, readable as an
    edit: a space or a short word two changes happen to share does not split them, and a rewrite
    that keeps less than half of the words is shown as one deletion and one insertion rather
    than interleaved word salad."""
    a, b = _TOKENS.findall(before or ""), _TOKENS.findall(after or "")
    hunks: list[list[str]] = []  # [kind, text before, text after], kind "equal" or "change"
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        sandwiched = bool(hunks) and i2 < len(a) and j2 < len(b)
        if op == "equal" and not (sandwiched and len(old.strip()) <= SLIGHT_CHARS):
            hunks.append(["equal", old, new])
        elif hunks and hunks[-1][0] == "change":
            hunks[-1][1] += old
            hunks[-1][2] += new
        else:
            hunks.append(["change", old, new])
    shared = sum(len(text.split()) for kind, text, _ in hunks if kind == "equal")
    if shared < MIN_SHARED * min(len((before or "").split()), len((after or "").split())):
        hunks = [["change", before or "", after or ""]]
    pieces: list[DiffPiece] = []
    for kind, old, new in hunks:
        if kind == "equal":
            pieces.append(DiffPiece("equal", old))
            continue
        if old:
            pieces.append(DiffPiece("delete", old))
        if new:
            pieces.append(DiffPiece("insert", new))
    return pieces


def review_item_for_display(*, project: Project, pk: int, expert=None) -> ReviewItem | None:
    """One item of the project with its critique, response and attack, in one query; with
    `expert`, served as it was served to them (blind, gold probe) in one more."""
    item = (ReviewItem.objects.select_related("critique__response__attack")
            .filter(project=project, pk=pk).first())
    if item is not None and expert is not None:
        assignment = (ReviewAssignment.objects.filter(item=item, expert=expert)
                      .only("blind", "gold_probe").first())
        if assignment is not None:
            item.served_as = assignment.served_as
    return item


def review_item_context(*, item: ReviewItem) -> dict:
    """What the item view shows: texts, highlighted response, revision and its diff.

    Served blind, the context holds no critique at all (no verdict, category, severity,
    confidence, spans, explanation, revision or dimensions), so no template can show one by
    mistake; the expert's edit box starts from the learner's answer.
    """
    response = item.critique.response
    common = {"item": item, "response": response, "attack": response.attack,
              "blind": item.served_as.blind, "opened_at": f"{timezone.now().timestamp():.3f}"}
    if item.served_as.blind:
        return {**common, "segments": [Segment(response.text)], "revision": response.text,
                "diff": []}
    critique = item.critique
    return {
        **common,
        "critique": critique,
        "dimensions": dimension_rows(critique),
        "segments": highlight_segments(response.text, critique.spans),
        # What approve curates, so the box and the diff never promise a change it won't make.
        "revision": critique.approved_answer,
        "diff": word_diff(response.text, critique.approved_answer)
        if critique.replaces_answer and critique.suggested_revision else [],
    }


def _today_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def items_left(*, project: Project) -> int:
    key = f"review:items-left:{project.pk}"
    value = cache.get(key)
    if value is None:
        value = ReviewItem.objects.filter(project=project, state=ItemState.PENDING).count()
        cache.set(key, value, ITEMS_LEFT_CACHE_SECONDS)
    return value


def review_progress(*, project: Project, expert, now: datetime | None = None) -> dict:
    """The expert's figures for today (one query) and the project's items left (cached)."""
    now = now or timezone.now()
    rows = list(
        Review.objects.filter(expert=expert, item__project=project, action__in=UNDOABLE,
                              created_at__gte=_today_start(now), undone_by__isnull=True)
        .values_list("action", "seconds_spent")
    )
    decided = [(action, seconds) for action, seconds in rows if action in DECISIONS]
    seconds = [s for _, s in rows if s > 0]
    median = statistics.median(seconds) if seconds else None
    return {
        "items_left": items_left(project=project),
        "decisions_today": len(decided),
        "skips_today": len(rows) - len(decided),
        "median_seconds": median,
        "items_per_hour": 3600.0 / statistics.fmean(seconds) if seconds else None,
        "accept_rate": (sum(a == ReviewAction.APPROVE for a, _ in decided) / len(decided)
                        if decided else None),
    }


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


def project_agreement(*, project: Project) -> dict:
    """Inter-expert agreement (Cohen's kappa per pair, Krippendorff's alpha over all items) and
    critic-expert agreement (share agreeing and kappa), over all live decisions."""
    rows = list(
        Review.objects.filter(item__project=project).counting()
        .values_list("item_id", "expert_id", "expert__username", "final_verdict",
                     "item__critique__verdict")
    )
    by_item: dict[int, dict[int, str]] = defaultdict(dict)
    names: dict[int, str] = {}
    critic, expert = [], []
    for item_id, expert_id, username, verdict, critic_verdict in rows:
        by_item[item_id][expert_id] = verdict
        names[expert_id] = username
        critic.append(critic_verdict)
        expert.append(verdict)
    pairs = []
    for a, b in combinations(sorted(names), 2):
        shared = [(v[a], v[b]) for v in by_item.values() if a in v and b in v]
        if shared:
            pairs.append({"experts": (names[a], names[b]), "items": len(shared),
                          "kappa": _finite(cohen_kappa([x for x, _ in shared],
                                                       [y for _, y in shared]))})
    overlapping = [list(v.values()) for v in by_item.values() if len(v) >= 2]
    return {
        "decisions": len(rows),
        "overlapping_items": len(overlapping),
        "pairs": pairs,
        "alpha": _finite(krippendorff_alpha(overlapping)) if overlapping else None,
        "critic_agreement": (sum(c == e for c, e in zip(critic, expert)) / len(rows)
                             if rows else None),
        "critic_kappa": _finite(cohen_kappa(critic, expert)) if rows else None,
    }


def adjudication_queue(*, project: Project) -> QuerySet[ReviewItem]:
    return (ReviewItem.objects.filter(project=project, state=ItemState.DISAGREEMENT)
            .select_related("critique__response__attack").order_by("-priority", "id"))


def adjudicated_items(*, project: Project) -> QuerySet[ReviewItem]:
    """Settled items, newest first: the candidates for gold (and the gold items)."""
    return (ReviewItem.objects.filter(project=project, adjudicated=True)
            .select_related("critique__response__attack").order_by("-curated_at", "-id"))


def adjudication_decisions(*, item: ReviewItem) -> list[Review]:
    """The live decisions that disagree, side by side, with a diff of each response (gold
    probes are answers to the settled item, not part of the disagreement)."""
    decisions = list(Review.objects.filter(item=item).counting()
                     .select_related("expert").order_by("created_at", "id"))
    original = item.critique.response.text
    for decision in decisions:
        decision.diff = word_diff(original, decision.corrected_response)
    return decisions
