"""Exports: every format's exact shape, provenance, filters, snapshots and the command."""

import csv
import json
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotator.models import (
    DatasetSnapshot,
    ItemState,
    Review,
    ReviewAction,
    Role,
    SnapshotExample,
)
from annotator.selectors.exports import pseudonym
from annotator.services.exports import export_to_path
from tests.factories import add_member, make_campaign, make_review_item

pytestmark = pytest.mark.django_db


def curate(item, final_response, verdict="unsafe", adjudicated=False):
    item.state = ItemState.DONE
    item.final_verdict = verdict
    item.final_response = final_response
    item.adjudicated = adjudicated
    item.save()
    return item


@pytest.fixture
def expert(project):
    return add_member(project, Role.EXPERT, username="alice-the-expert")


@pytest.fixture
def items(project, expert):
    """Two differing pairs (one with two agreeing reviews), one approved-as-is safe answer, one
    pending item and one held-out item."""
    campaign = make_campaign(project, name="Round 1")
    fixed = curate(make_review_item(project, query="Pick a lock?", campaign=campaign,
                                    response="Sure: insert a wrench."), "Ask a locksmith.")
    other = add_member(project, Role.EXPERT)
    for user in (expert, other):
        Review.objects.create(item=fixed, expert=user, action=ReviewAction.APPROVE,
                              final_verdict="unsafe")
    edited = curate(make_review_item(project, query="Make a fake ID?", category="fraud",
                                     response="Print a card.", strategy="roleplay"),
                    "I can't help with forging documents.")
    Review.objects.create(item=edited, expert=expert, action=ReviewAction.EDIT,
                          final_verdict="unsafe", corrected_response=edited.final_response)
    same = curate(make_review_item(project, query="Capital of France?", response="Paris.",
                                   verdict="safe"), "Paris.", verdict="safe")
    make_review_item(project, query="Still pending?")
    held = make_campaign(project, name="Held out", held_out=True)
    curate(make_review_item(project, query="Held-out attack?", campaign=held), "No.")
    return {"fixed": fixed, "edited": edited, "same": same}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def export(project, fmt, tmp_path, **kwargs):
    path = tmp_path / f"out.{fmt}"
    rows = export_to_path(project=project, fmt=fmt, path=path, **kwargs)
    return rows, path


def test_trl_preference_has_only_differing_pairs_with_provenance(project, items, expert, tmp_path):
    rows, path = export(project, "trl_preference", tmp_path)
    records = read_jsonl(path)
    assert rows == len(records) == 2
    first = records[0]
    assert list(first)[:3] == ["prompt", "chosen", "rejected"]
    assert (first["prompt"], first["chosen"], first["rejected"]) == (
        "Pick a lock?", "Ask a locksmith.", "Sure: insert a wrench.")
    assert first["review_ids"] == list(items["fixed"].reviews.values_list("id", flat=True))
    assert first["expert_ids"][0] == pseudonym(expert.pk)
    assert first["agreement"] == 1.0 and first["campaign"] == "Round 1"
    assert first["critic"] == "layered" and first["learner_version"] == "base"
    created = datetime.fromisoformat(first["created_at"])
    assert created == items["fixed"].created_at and created.utcoffset() == timedelta(0)
    assert records[1]["category"] == "fraud" and records[1]["strategy"] == "roleplay"
    # Pseudonyms only: no username anywhere in the file.
    assert "alice-the-expert" not in path.read_text()


def test_provenance_can_be_turned_off(project, items, tmp_path):
    _, path = export(project, "trl_preference", tmp_path, include_provenance=False)
    assert [list(r) for r in read_jsonl(path)] == [["prompt", "chosen", "rejected"]] * 2


def test_conversational_format_is_message_lists(project, items, tmp_path):
    items["fixed"].critique.response.attack.__class__.objects.filter(
        pk=items["fixed"].critique.response.attack_id).update(system_prompt="Be careful.")
    _, path = export(project, "trl_conversational", tmp_path, include_provenance=False)
    first, second = read_jsonl(path)
    assert first == {
        "prompt": [{"role": "system", "content": "Be careful."},
                   {"role": "user", "content": "Pick a lock?"}],
        "chosen": [{"role": "assistant", "content": "Ask a locksmith."}],
        "rejected": [{"role": "assistant", "content": "Sure: insert a wrench."}]}
    assert second["prompt"] == [{"role": "user", "content": "Make a fake ID?"}]


def test_sft_chat_uses_every_curated_item(project, items, tmp_path):
    rows, path = export(project, "sft_chat", tmp_path, include_provenance=False)
    records = read_jsonl(path)
    assert rows == 3
    assert records[2] == {"messages": [{"role": "user", "content": "Capital of France?"},
                                       {"role": "assistant", "content": "Paris."}]}


def test_kto_labels_curated_true_and_replaced_originals_false(project, items, tmp_path):
    _, path = export(project, "kto", tmp_path, include_provenance=False)
    labels = [(r["completion"], r["label"]) for r in read_jsonl(path)]
    assert labels == [("Ask a locksmith.", True), ("Sure: insert a wrench.", False),
                      ("I can't help with forging documents.", True), ("Print a card.", False),
                      ("Paris.", True)]


def test_csv_and_parquet(project, items, tmp_path):
    _, csv_path = export(project, "csv", tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert [r["chosen"] for r in records] == ["Ask a locksmith.", "I can't help with forging documents."]
    assert len(records[0]["review_ids"].split()) == 2

    _, parquet_path = export(project, "parquet", tmp_path)
    table = pq.read_table(parquet_path)
    assert table.num_rows == 2
    assert table.column("prompt").to_pylist() == ["Pick a lock?", "Make a fake ID?"]
    assert str(table.schema.field("curated_at").type).startswith("timestamp")
    assert table.column("created_at").to_pylist()[0] == items["fixed"].created_at
    assert table.column("agreement").to_pylist() == [1.0, 1.0]


def test_filters(project, items, tmp_path):
    assert export(project, "sft_chat", tmp_path, filters={"category": "fraud"})[0] == 1
    assert export(project, "sft_chat", tmp_path, filters={"strategy": "roleplay"})[0] == 1
    assert export(project, "sft_chat", tmp_path, filters={"verdict": "safe"})[0] == 1
    # Items nobody reviewed have no agreement: a minimum leaves them out.
    assert export(project, "sft_chat", tmp_path, filters={"min_agreement": 0.5})[0] == 2
    assert export(project, "sft_chat", tmp_path, filters={"include_held_out": True})[0] == 4
    campaign = items["fixed"].critique.response.attack.campaign
    assert export(project, "sft_chat", tmp_path, filters={"campaign_id": campaign.pk})[0] == 1
    assert export(project, "sft_chat", tmp_path, filters={"adjudicated_only": True})[0] == 0


def test_undone_reviews_do_not_count(project, items, expert, tmp_path):
    item = items["edited"]
    first = item.reviews.get()
    Review.objects.create(item=item, expert=expert, action=ReviewAction.UNDO, undoes=first)
    Review.objects.create(item=item, expert=expert, action=ReviewAction.REJECT, final_verdict="safe")
    _, path = export(project, "trl_preference", tmp_path)
    row = read_jsonl(path)[1]
    assert len(row["review_ids"]) == 1 and row["agreement"] == 0.0


@pytest.mark.parametrize("filters, message", [
    ({"colour": "red"}, "Unknown filter"), ({"min_agreement": 2}, "from 0 to 1"),
    ({"verdict": "maybe"}, "verdict must be"), ({"campaign_id": 999999}, "no campaign"),
    ({"split": "train"}, "snapshot exports only"),
])
def test_bad_filters_are_refused(project, items, tmp_path, filters, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=message):
        export(project, "trl_preference", tmp_path, filters=filters)
    assert not (tmp_path / "out.trl_preference").exists()


def test_snapshot_export_uses_the_frozen_examples(project, items, tmp_path):
    snapshot = DatasetSnapshot.objects.create(project=project, name="S1", content_hash="x" * 64)
    item = items["fixed"]
    SnapshotExample.objects.create(snapshot=snapshot, kind="pair", split="train", prompt="P",
                                   chosen="C", rejected="R", review_item=item, category="c")
    SnapshotExample.objects.create(snapshot=snapshot, kind="sft", split="validation", prompt="P",
                                   chosen="C", review_item=item)
    # Later edits to the item never change what the snapshot exports.
    curate(item, "Changed afterwards.")
    _, path = export(project, "trl_preference", tmp_path, snapshot=snapshot)
    (record,) = read_jsonl(path)
    assert (record["prompt"], record["chosen"], record["rejected"]) == ("P", "C", "R")
    assert record["snapshot_id"] == snapshot.pk and len(record["review_ids"]) == 2
    _, path = export(project, "kto", tmp_path, snapshot=snapshot, include_provenance=False)
    assert read_jsonl(path) == [{"prompt": "P", "completion": "C", "label": True},
                                {"prompt": "P", "completion": "R", "label": False}]
    assert export(project, "sft_chat", tmp_path, snapshot=snapshot,
                  filters={"split": "train"})[0] == 0


def test_empty_export_writes_an_empty_valid_file(project, tmp_path):
    rows, path = export(project, "parquet", tmp_path)
    assert rows == 0 and pq.read_table(path).num_rows == 0


def test_export_command(project, items, tmp_path):
    out = tmp_path / "pairs.jsonl"
    call_command("export", "--project", project.slug, "--format", "trl_preference",
                 "--out", str(out), "--filter", "category=fraud", "--no-provenance")
    assert read_jsonl(out) == [{"prompt": "Make a fake ID?",
                                "chosen": "I can't help with forging documents.",
                                "rejected": "Print a card."}]
    with pytest.raises(CommandError, match="No project"):
        call_command("export", "--project", "nope", "--format", "kto", "--out", str(out))
    with pytest.raises(CommandError, match="Unknown filter"):
        call_command("export", "--project", project.slug, "--format", "kto", "--out", str(out),
                     "--filter", "colour=red")
