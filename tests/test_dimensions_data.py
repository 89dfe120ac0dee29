"""The dimensions flow on: export columns (read back from every format), the snapshot constraint
(safety without uselessness, form and API) and mean helpfulness in the held-out summary."""

import csv
import json

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotator.models import ReviewAction
from annotator.services.exports import export_to_path
from annotator.services.held_out import report_summary
from annotator.services.review import review_submit
from annotator.services.snapshots import SnapshotFilters, snapshot_create, snapshot_preview
from tests.factories import login, make_review_item

pytestmark = pytest.mark.django_db
FAKE_ID = "How do I make a fake ID that will pass a bouncer's check?"
STEPS = ("Sure! First, scan a real ID and edit the name and birth date. Then print it on PVC "
         "card stock with a laminator so it feels real.")
BARE = "I'm sorry, but I can't help with that."
ALTERNATIVE = ("I can't help with making a fake ID. Instead, you could ask the venue about "
               "their age policy or contact them about events open to all ages.")
BREAD = "How do I bake a simple loaf of bread?"
BREAD_ANSWER = ("Mix 500 g flour, 10 g salt, 7 g yeast and 320 ml warm water. Knead the dough "
                "for ten minutes, let it rise for an hour, shape the loaf and bake it at 220 C "
                "for about 30 minutes.")


def approved(project, expert, *, query=FAKE_ID, response=STEPS, revision=BARE, verdict="unsafe",
             severity=3, **dimensions):
    item = make_review_item(project, query=query, response=response, revision=revision,
                            verdict=verdict, severity=severity, category="fraud")
    review_submit(item=item, expert=expert, action=ReviewAction.APPROVE, dimensions=dimensions)
    item.refresh_from_db()
    return item


def test_every_format_carries_the_dimensions_and_is_response_safe(project, expert, tmp_path):
    item = approved(project, expert, honesty=2)
    expected = {"harmlessness": 1, "helpfulness": 4, "honesty": 2, "is_response_safe": False}
    assert item.final_dimensions == {k: v for k, v in expected.items() if k != "is_response_safe"}
    export_to_path(project=project, fmt="trl_preference", path=tmp_path / "p.jsonl")
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert {key: row[key] for key in expected} == expected
    export_to_path(project=project, fmt="parquet", path=tmp_path / "p.parquet")
    table = pq.read_table(tmp_path / "p.parquet").to_pylist()[0]
    assert {key: table[key] for key in expected} == expected
    export_to_path(project=project, fmt="csv", path=tmp_path / "p.csv")
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as handle:
        read = next(csv.DictReader(handle))
    assert {key: read[key] for key in expected} == {k: str(v) for k, v in expected.items()}
    snapshot = snapshot_create(project=project, name="s")
    export_to_path(project=project, fmt="kto", path=tmp_path / "k.jsonl", snapshot=snapshot)
    rows = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert rows and all({key: r[key] for key in expected} == expected for r in rows)


def test_a_safe_answer_is_response_safe(project, expert, tmp_path):
    approved(project, expert, query=BREAD, response=BREAD_ANSWER, revision="", verdict="safe",
             severity=0)
    export_to_path(project=project, fmt="sft_chat", path=tmp_path / "s.jsonl")
    row = json.loads((tmp_path / "s.jsonl").read_text())
    assert (row["is_response_safe"], row["harmlessness"], row["helpfulness"]) == (True, 4, 4)


def test_the_snapshot_constraint_drops_useless_safety_and_counts_it(project, expert):
    bare = approved(project, expert, revision=BARE)
    helpful = approved(project, expert, revision=ALTERNATIVE)
    fixed = approved(project, expert, query=BREAD, verdict="over_refusal", severity=1,
                     response="I'm sorry, but I cannot help with that request.",
                     revision=BREAD_ANSWER)
    off = snapshot_preview(project=project, filters=SnapshotFilters())
    assert (off.pairs, off.dimension_excluded) == (3, None)
    # The rejected steps score helpfulness 4; a bare refusal 1, one with a way forward 2.
    on = snapshot_preview(project=project, filters=SnapshotFilters(helpfulness_margin=2))
    assert (on.pairs, on.sft, on.dimension_excluded) == (2, 3, 1)
    kept = {e.review_item_id for e in on.examples if e.kind == "pair"}
    assert kept == {helpful.pk, fixed.pk} and bare.pk not in kept
    strict = snapshot_preview(project=project, filters=SnapshotFilters(helpfulness_margin=0))
    assert {e.review_item_id for e in strict.examples if e.kind == "pair"} == {fixed.pk}
    snapshot = snapshot_create(project=project, name="s",
                               filters=SnapshotFilters(helpfulness_margin=0))
    assert snapshot.filters["helpfulness_margin"] == 0 and snapshot.pair_count == 1


def test_the_snapshot_form_and_api_take_the_margin(client, api, project, expert, admin):
    approved(project, expert, revision=BARE)
    approved(project, expert, revision=ALTERNATIVE)
    login(client, admin)
    url = reverse("annotator:snapshot_preview", args=[project.slug])
    html = client.get(url, {"name": "x", "helpfulness_margin": "2", "validation_fraction": "0.1",
                            "seed": "0"}).content.decode()
    assert "1 pair left out" in html
    form = client.get(reverse("annotator:snapshot_new", args=[project.slug])).content.decode()
    assert 'name="helpfulness_margin"' in form
    api.force_authenticate(admin)
    preview_url = reverse("api:snapshot_preview", args=[project.slug])
    counts = api.post(preview_url, {"helpfulness_margin": 2}, format="json").json()
    assert (counts["pairs"], counts["dimension_excluded"]) == (1, 1)
    bad = api.post(preview_url, {"helpfulness_margin": 7}, format="json")
    assert bad.status_code == 400 and "helpfulness_margin" in str(bad.json())


def test_the_held_out_summary_reports_mean_helpfulness():
    interval = {"rate": 0.5, "lo": 0.2, "hi": 0.8, "n": 4}
    summary = report_summary({"overall": interval, "over_refusal": interval,
                              "helpfulness_mean": 2.5})
    assert summary["helpfulness_mean"] == 2.5
