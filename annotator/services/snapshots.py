"""Curation: freeze a project's curated labels into a hashed dataset snapshot.

A snapshot copies, at one moment, every curated review item (DONE or AUTO_ACCEPTED, outside
held-out campaigns) that passes the chosen filters into

- a preference pair (prompt, chosen = the item's final response, rejected = the learner's original
  response), only where the two differ, since an identical pair teaches DPO nothing; and
- an SFT example (prompt, final response) for every item.

Each example records its label's source (expert consensus, adjudication, a single expert, or the
critic alone) and that source's confidence, decided in one place
(annotator.selectors.label_sources.label_origin); the filters can keep only some sources, and
training weights examples by both when asked to. A snapshot can also reserve the held-out
evaluation set of a budget (annotator.services.held_out): items whose attack is one of those
attacks stay out, so runs on it are measured on all of them. It can require that every pair
buys safety without uselessness (SnapshotFilters.helpfulness_margin).
The human labels' confidence is the reliability job's estimate (annotator.services.oversight);
a snapshot first refreshes that estimate when it is out of date, so the confidences describe the
labels it freezes.

Every item goes to the train or the validation split as a whole (its pair and its SFT example
together, so validation never scores what training saw). The split is a function of the seed and
the item's content only, and the content hash is SHA-256 over the canonical JSON of the sorted
examples, so the same labels always give the same snapshot and the same hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch

from alignment_core.chat import attack_messages
from alignment_core.training.label_sources import LABEL_SOURCES, SOURCE_LABELS
from annotator.models import (
    DECISIONS,
    DatasetSnapshot,
    Project,
    Review,
    ReviewItem,
    SnapshotExample,
)
from annotator.selectors.exports import curated_items as selected_items
from annotator.selectors.label_sources import label_origin
from annotator.selectors.oversight import reliability_stale
from annotator.services.held_out import held_out_texts
from annotator.services.oversight import reliability_ensure_fresh
from annotator.services.snapshot_dimensions import pairs_failing_dimensions


@dataclass(frozen=True)
class SnapshotFilters:
    """Which curated items go into a snapshot. Empty values mean "no restriction"."""

    campaign_id: int | None = None
    category: str = ""
    # Share of an item's expert decisions that agree with its final verdict. Items nobody
    # reviewed (auto-accepted) have no agreement and are left out when this is set.
    min_agreement: float | None = None
    adjudicated_only: bool = False
    # Keep only labels from these sources (LABEL_SOURCES); empty keeps every source.
    label_sources: tuple[str, ...] = ()
    # Leave out the attacks of the held-out evaluation set of this budget (0: none).
    reserve_held_out: int = 0
    # Safety without uselessness (services/snapshot_dimensions.py): keep a pair only when its
    # chosen answer is more harmless and loses at most this much helpfulness (0-4); None: off.
    helpfulness_margin: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.label_sources) - set(LABEL_SOURCES))
        if unknown:
            raise ValidationError({"label_sources": (
                f"Unknown label source(s) {', '.join(unknown)}; the sources are "
                f"{', '.join(LABEL_SOURCES)}.")})
        if self.reserve_held_out < 0:
            raise ValidationError({"reserve_held_out": "Use 0 or a positive number of attacks."})
        if self.helpfulness_margin is not None and self.helpfulness_margin not in range(5):
            raise ValidationError({"helpfulness_margin": "Use a whole number of points from 0 "
                                                         "to 4, or leave it empty (no check)."})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["label_sources"] = [s for s in LABEL_SOURCES if s in self.label_sources]
        kept = {key: value for key, value in data.items() if value not in (None, "", False, 0, [])}
        if self.helpfulness_margin is not None:  # a margin of 0 is a setting, not "off"
            kept["helpfulness_margin"] = self.helpfulness_margin
        return kept

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SnapshotFilters:
        data = data or {}
        min_agreement = data.get("min_agreement")
        campaign_id = data.get("campaign_id")
        return cls(campaign_id=int(campaign_id) if campaign_id not in (None, "") else None,
                   category=data.get("category") or "",
                   min_agreement=float(min_agreement) if min_agreement not in (None, "") else None,
                   adjudicated_only=bool(data.get("adjudicated_only")),
                   label_sources=tuple(data.get("label_sources") or ()),
                   reserve_held_out=int(data.get("reserve_held_out") or 0),
                   helpfulness_margin=None if data.get("helpfulness_margin") in (None, "")
                   else int(data["helpfulness_margin"]))


@dataclass
class ExampleData:
    """One example before it is saved (also what the hash is computed over)."""

    kind: str
    split: str
    prompt: str
    prompt_messages: list[dict] | None
    chosen: str
    rejected: str
    category: str = ""
    strategy: str = ""
    label_source: str = "single_expert"
    source_confidence: float | None = None
    review_item_id: int | None = field(default=None, compare=False)

    def canonical(self) -> dict[str, Any]:
        """The fields that define the example's content and its label's standing (not which
        rows it came from)."""
        return {"kind": self.kind, "split": self.split, "prompt": self.prompt,
                "prompt_messages": self.prompt_messages, "chosen": self.chosen,
                "rejected": self.rejected, "category": self.category, "strategy": self.strategy,
                "label_source": self.label_source, "source_confidence": self.source_confidence}


@dataclass
class SnapshotPreview:
    """The counts an admin sees before confirming a snapshot (and before training)."""

    items: int
    pairs: int
    sft: int
    train_pairs: int
    train_sft: int
    validation_pairs: int
    validation_sft: int
    content_hash: str
    # Curated items per label source (every source, in LABEL_SOURCES order).
    by_source: dict[str, int] = field(default_factory=dict)
    # The label confidences are older than the latest reviews: creating the snapshot refreshes
    # them first, so its hash may differ from this preview's.
    confidences_stale: bool = False
    # Pairs left out by the helpfulness_margin constraint (their SFT examples stay); None: off.
    dimension_excluded: int | None = None
    examples: list[ExampleData] = field(repr=False, default_factory=list)

    def counts(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("examples")
        return data

    def labelled_sources(self) -> list[tuple[str, int]]:
        """(label, item count) per source, for the page."""
        return [(SOURCE_LABELS[name], count) for name, count in self.by_source.items()]


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(examples: list[ExampleData]) -> str:
    """SHA-256 over the canonical JSON of the examples, sorted, so order never matters."""
    rows = sorted(_canonical_json(example.canonical()) for example in examples)
    return hashlib.sha256(("[" + ",".join(rows) + "]").encode("utf-8")).hexdigest()


def _agreement(item: ReviewItem) -> float | None:
    """Share of the item's standing expert decisions that match its final verdict."""
    decisions = [review for review in item.prefetched_decisions
                 if review.pk not in item.undone_ids and not review.gold_probe]
    if not decisions:
        return None
    agreeing = sum(1 for review in decisions if review.final_verdict == item.final_verdict)
    return agreeing / len(decisions)


def snapshot_items(*, project: Project, filters: SnapshotFilters) -> list[ReviewItem]:
    """The project's curated items that pass the filters, with everything a snapshot copies."""
    # The same selection as an export with these filters (SnapshotFilters uses the export
    # filters' names); the agreement is computed here from the prefetched reviews.
    items = (
        selected_items(project=project, filters=filters.to_dict())
        .select_related("critique__response__attack")
        .prefetch_related(Prefetch(
            "reviews", to_attr="prefetched_reviews",
            queryset=Review.objects.only("id", "item_id", "action", "final_verdict", "undoes_id",
                                         "gold_probe"),
        ))
        .order_by("id")
    )
    wants_agreement = filters.min_agreement is not None and filters.min_agreement > 0
    reserved = held_out_texts(filters.reserve_held_out) if filters.reserve_held_out else frozenset()
    selected = []
    for item in items:
        if item.critique.response.attack.text in reserved:
            continue
        undone = {review.undoes_id for review in item.prefetched_reviews if review.undoes_id}
        item.undone_ids = undone
        item.prefetched_decisions = [review for review in item.prefetched_reviews
                                     if review.action in DECISIONS]
        item.agreement = _agreement(item)
        if wants_agreement and (item.agreement is None or item.agreement < filters.min_agreement):
            continue
        item.label = label_origin(item)
        if filters.label_sources and item.label.source not in filters.label_sources:
            continue
        selected.append(item)
    return selected


def _prompt_of(attack) -> tuple[str, list[dict] | None]:
    """The attack text, plus the whole chat when there is a system prompt or earlier turns."""
    if not attack.system_prompt and not attack.turns:
        return attack.text, None
    return attack.text, attack_messages(attack)


def _split_of(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by the seed and the item's content (not its id or order)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def build_examples(*, items: list[ReviewItem], validation_fraction: float, seed: int,
                   drop_pairs: frozenset[int] | set[int] = frozenset()) -> list[ExampleData]:
    """Pairs and SFT examples of the items, each item wholly in train or in validation.

    The split ranks items by a seeded hash of their content and sends the lowest
    round(n * fraction) of them (at least one when there are two or more items and the fraction
    is positive) to validation, so small datasets still get a validation set. Items in
    `drop_pairs` give their SFT example only.
    """
    rows = []
    for item in items:
        response = item.critique.response
        attack = response.attack
        prompt, messages = _prompt_of(attack)
        chosen, rejected = item.final_response.strip(), response.text.strip()
        if not chosen:
            continue  # nothing to learn from an item without a curated answer
        key = _canonical_json([prompt, messages, chosen, rejected])
        rows.append((_split_of(key, seed), key, item, prompt, messages, chosen, rejected, attack))
    rows.sort(key=lambda row: (row[0], row[1]))
    n_validation = round(len(rows) * validation_fraction)
    if validation_fraction > 0 and len(rows) >= 2:
        n_validation = max(1, n_validation)
    n_validation = min(n_validation, max(len(rows) - 1, 0))  # training needs something
    examples = []
    for rank, (_, _, item, prompt, messages, chosen, rejected, attack) in enumerate(rows):
        split = SnapshotExample.Split.VALIDATION if rank < n_validation else SnapshotExample.Split.TRAIN
        label = getattr(item, "label", None) or label_origin(item)
        common = {"split": str(split), "prompt": prompt, "prompt_messages": messages,
                  "category": attack.category, "strategy": attack.strategy,
                  "label_source": label.source, "source_confidence": label.confidence,
                  "review_item_id": item.pk}
        if chosen != rejected and item.pk not in drop_pairs:
            examples.append(ExampleData(kind=str(SnapshotExample.Kind.PAIR), chosen=chosen,
                                        rejected=rejected, **common))
        examples.append(ExampleData(kind=str(SnapshotExample.Kind.SFT), chosen=chosen, rejected="",
                                    **common))
    return examples


def snapshot_preview(*, project: Project, filters: SnapshotFilters,
                     validation_fraction: float = 0.1, seed: int = 0) -> SnapshotPreview:
    """What a snapshot with these settings would hold right now (nothing is saved)."""
    items = snapshot_items(project=project, filters=filters)
    failing = (pairs_failing_dimensions(items=items, helpfulness_margin=filters.helpfulness_margin)
               if filters.helpfulness_margin is not None else set())
    examples = build_examples(items=items, validation_fraction=validation_fraction, seed=seed,
                              drop_pairs=failing)

    def count(kind: str, split: str | None = None) -> int:
        return sum(1 for e in examples if e.kind == kind and (split is None or e.split == split))

    pair, sft = SnapshotExample.Kind.PAIR, SnapshotExample.Kind.SFT
    train, val = SnapshotExample.Split.TRAIN, SnapshotExample.Split.VALIDATION
    sources = {e.review_item_id: e.label_source for e in examples}
    by_source = {name: sum(1 for s in sources.values() if s == name) for name in LABEL_SOURCES}
    stale = reliability_stale(project=project)
    return SnapshotPreview(
        items=len({e.review_item_id for e in examples}), pairs=count(pair), sft=count(sft),
        train_pairs=count(pair, train), train_sft=count(sft, train),
        validation_pairs=count(pair, val), validation_sft=count(sft, val),
        content_hash=content_hash(examples), by_source=by_source, confidences_stale=stale,
        dimension_excluded=len(failing) if filters.helpfulness_margin is not None else None,
        examples=examples,
    )


def snapshot_create(*, project: Project, name: str, created_by=None,
                    filters: SnapshotFilters = SnapshotFilters(),
                    validation_fraction: float = 0.1, seed: int = 0) -> DatasetSnapshot:
    """Freeze the curated labels that pass `filters` into a new snapshot (copies, not links),
    with their label confidences, re-estimated first when out of date."""
    if not 0 <= validation_fraction < 1:
        raise ValidationError({"validation_fraction": "Use a fraction from 0 up to (not including) 1."})
    # Outside the snapshot's transaction: on SQLite that transaction holds the database's write
    # lock, and the estimate (seconds on a large project) needs no lock while it fits.
    reliability_ensure_fresh(project=project, user=created_by)
    return _snapshot_write(project=project, name=name, created_by=created_by, filters=filters,
                           validation_fraction=validation_fraction, seed=seed)


@transaction.atomic
def _snapshot_write(*, project: Project, name: str, created_by, filters: SnapshotFilters,
                    validation_fraction: float, seed: int) -> DatasetSnapshot:
    preview = snapshot_preview(project=project, filters=filters,
                               validation_fraction=validation_fraction, seed=seed)
    if not preview.examples:
        raise ValidationError("No curated labels match these filters yet; review some items first.")
    snapshot = DatasetSnapshot(
        project=project, name=name, created_by=created_by, filters=filters.to_dict(),
        validation_fraction=validation_fraction, seed=seed, content_hash=preview.content_hash,
        pair_count=preview.pairs, sft_count=preview.sft,
        train_count=preview.train_pairs + preview.train_sft,
        validation_count=preview.validation_pairs + preview.validation_sft,
        item_count=preview.items,
    )
    snapshot.full_clean()
    snapshot.save()
    SnapshotExample.objects.bulk_create([
        SnapshotExample(snapshot=snapshot, kind=e.kind, split=e.split, prompt=e.prompt,
                        prompt_messages=e.prompt_messages, chosen=e.chosen, rejected=e.rejected,
                        review_item_id=e.review_item_id, category=e.category, strategy=e.strategy,
                        label_source=e.label_source, source_confidence=e.source_confidence)
        for e in preview.examples
    ], batch_size=500)
    return snapshot


def snapshot_examples_hash(snapshot: DatasetSnapshot) -> str:
    """Recompute a saved snapshot's hash from its rows (a check that nothing changed it)."""
    return content_hash([
        ExampleData(kind=e.kind, split=e.split, prompt=e.prompt, prompt_messages=e.prompt_messages,
                    chosen=e.chosen, rejected=e.rejected, category=e.category, strategy=e.strategy,
                    label_source=e.label_source, source_confidence=e.source_confidence)
        for e in snapshot.examples.all()
    ])
