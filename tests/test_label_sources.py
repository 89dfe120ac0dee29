"""Label sources: every snapshot example records where its label came from and how sure it is;
the snapshot form and API choose sources; the hash covers both; training weights examples by
them; the audited critic-expert disagreement pre-fills label smoothing on the training form."""

from __future__ import annotations

import math

import pytest
from django.core.management import call_command
from django.urls import reverse

from alignment_core.training.label_sources import example_weight
from annotator.learner_runtime import _loaded
from annotator.models import (
    Critique,
    DatasetSnapshot,
    ItemState,
    JobStatus,
    ReviewAction,
    Role,
    SnapshotExample,
    TrainingRun,
)
from annotator.services.review import review_adjudicate, review_submit
from annotator.services.snapshots import snapshot_create, snapshot_examples_hash
from tests.factories import add_member, login, make_project, make_review_item
from tests.training_factories import UNSAFE_ANSWERS, curate

pytestmark = pytest.mark.django_db


def labelled(project, admin) -> dict[str, object]:
    """One curated item per label source, each labelled through the review services."""
    first, second = add_member(project, Role.EXPERT), add_member(project, Role.EXPERT)
    (q1, r1, f1), (q2, r2, f2), (q3, r3, f3), (q4, r4, f4) = UNSAFE_ANSWERS[:4]
    critic = curate(project, q1, r1, f1, state=ItemState.AUTO_ACCEPTED, confidence=0.8)

    single = make_review_item(project, query=q2, response=r2, revision=f2)
    review_submit(item=single, expert=first, action=ReviewAction.APPROVE, seconds_spent=30)

    consensus = make_review_item(project, query=q3, response=r3, revision=f3)
    consensus.reviews_required = 2
    consensus.save(update_fields=["reviews_required"])
    review_submit(item=consensus, expert=first, action=ReviewAction.APPROVE)
    review_submit(item=consensus, expert=second, action=ReviewAction.APPROVE)

    disputed = make_review_item(project, query=q4, response=r4, revision=f4)
    disputed.reviews_required = 2
    disputed.save(update_fields=["reviews_required"])
    review_submit(item=disputed, expert=first, action=ReviewAction.APPROVE)
    review_submit(item=disputed, expert=second, action=ReviewAction.REJECT, reason_code="other")
    review_adjudicate(item=disputed, admin=admin, final_verdict="unsafe")
    return {"critic": critic, "single_expert": single, "expert_consensus": consensus,
            "adjudicated": disputed}


def test_every_example_records_its_label_source_and_confidence(project, admin):
    items = labelled(project, admin)

    snapshot = snapshot_create(project=project, name="all", validation_fraction=0)

    examples = {e.review_item_id: e for e in snapshot.examples.filter(kind=SnapshotExample.Kind.PAIR)}
    assert len(examples) == 4
    for source, item in items.items():
        assert examples[item.pk].label_source == source
    critic = examples[items["critic"].pk]
    assert critic.source_confidence == pytest.approx(0.8)
    assert critic.label_weight == pytest.approx(example_weight("critic", 0.8)) == pytest.approx(0.4)
    # Freezing ran the reliability estimate first: a human label carries the experts' posterior
    # that it is right (Dawid-Skene on these few reviews), and its weight scales with it.
    human = examples[items["single_expert"].pk]
    assert 0.5 < human.source_confidence <= 1
    assert human.label_weight == pytest.approx(example_weight("single_expert", human.source_confidence))
    assert human.label_weight <= example_weight("single_expert", None) == pytest.approx(0.8)
    assert snapshot.source_counts() == {"expert_consensus": 1, "adjudicated": 1,
                                        "single_expert": 1, "critic": 1}


def test_the_hash_covers_the_label_source_and_confidence(project, admin):
    items = labelled(project, admin)
    first = snapshot_create(project=project, name="a", validation_fraction=0)
    assert snapshot_examples_hash(first) == first.content_hash

    # Same texts, same split: only the critic's confidence in its one label changed.
    Critique.objects.filter(review_item=items["critic"]).update(confidence=0.9)
    second = snapshot_create(project=project, name="b", validation_fraction=0)

    assert second.content_hash != first.content_hash
    assert snapshot_examples_hash(second) == second.content_hash


def test_the_api_chooses_sources_and_reports_them(api, project, admin):
    items = labelled(project, admin)
    api.force_authenticate(admin)
    url = f"/api/projects/{project.slug}/snapshots/"

    preview = api.post(url + "preview/", {"label_sources": ["critic"]}, format="json")
    assert preview.status_code == 200
    assert preview.json()["items"] == 1
    assert preview.json()["by_source"]["critic"] == 1

    created = api.post(url, {"name": "experts", "validation_fraction": 0,
                             "label_sources": ["expert_consensus", "adjudicated"]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["by_source"] == {"expert_consensus": 1, "adjudicated": 1, "single_expert": 0,
                                 "critic": 0}
    assert body["filters"]["label_sources"] == ["expert_consensus", "adjudicated"]
    snapshot = DatasetSnapshot.objects.get(pk=body["id"])
    assert set(snapshot.examples.values_list("review_item_id", flat=True)) == {
        items["expert_consensus"].pk, items["adjudicated"].pk}
    api.post(url, {"name": "all", "validation_fraction": 0}, format="json")
    listed = {row["name"]: row["by_source"] for row in api.get(url).json()["results"]}
    assert listed == {"experts": body["by_source"],
                      "all": {"expert_consensus": 1, "adjudicated": 1, "single_expert": 1,
                              "critic": 1}}


def test_the_api_rejects_an_unknown_source(api, project, admin):
    labelled(project, admin)
    api.force_authenticate(admin)
    response = api.post(f"/api/projects/{project.slug}/snapshots/",
                        {"label_sources": ["crowd"]}, format="json")
    assert response.status_code == 400
    assert "label_sources" in response.json()["errors"]
    assert not DatasetSnapshot.objects.exists()


def test_the_form_chooses_sources_and_the_page_shows_them(client, project, admin):
    items = labelled(project, admin)
    login(client, admin)
    form_url = reverse("annotator:snapshot_new", args=[project.slug])

    page = client.get(form_url).content.decode()
    assert 'value="critic"' in page and "Critic alone" in page
    assert ("Items by label source: Expert consensus 1 · Adjudicated 1 · Single expert 1 · "
            "Critic alone 1") in page
    preview = client.get(reverse("annotator:snapshot_preview", args=[project.slug]),
                         {"name": "x", "validation_fraction": "0", "seed": "0",
                          "label_sources": ["single_expert", "critic"]},
                         HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in preview
    assert '<span class="value">2</span><span class="label">curated items' in preview

    response = client.post(form_url, {"name": "humans", "validation_fraction": "0", "seed": "0",
                                      "label_sources": ["expert_consensus", "adjudicated",
                                                        "single_expert"]})
    snapshot = DatasetSnapshot.objects.get()
    assert response.status_code == 302
    assert items["critic"].pk not in set(snapshot.examples.values_list("review_item_id", flat=True))
    detail = client.get(snapshot.get_absolute_url()).content.decode()
    single = snapshot.examples.get(review_item_id=items["single_expert"].pk, kind="pair")
    assert "Single expert" in detail and f"weight {single.label_weight:.2f}" in detail
    assert ("label_sources = [&#x27;expert_consensus&#x27;, &#x27;adjudicated&#x27;, "
            "&#x27;single_expert&#x27;]") in detail


def audited(project, verdicts: list[tuple[str, str]]) -> None:
    """Audit items the experts finished: (critic verdict, experts' final verdict) each."""
    for k, (critic, expert) in enumerate(verdicts):
        item = make_review_item(project, query=f"audit {k}", verdict=critic, state=ItemState.DONE)
        item.is_audit, item.final_verdict = True, expert
        item.final_response = "An answer."
        item.save(update_fields=["is_audit", "final_verdict", "final_response"])


def test_the_audited_disagreement_prefills_label_smoothing(client, project, admin, snapshot):
    audited(project, [("unsafe", "unsafe"), ("unsafe", "safe"), ("safe", "safe"),
                      ("refusal", "refusal"), ("safe", "unsafe"), ("unsafe", "unsafe"),
                      ("safe", "safe"), ("unsafe", "unsafe")])
    # Disagreement on an item outside the audit sample says nothing about the critic's noise.
    outside = make_review_item(project, query="not audited", verdict="unsafe", state=ItemState.DONE)
    outside.final_verdict = "safe"
    outside.save(update_fields=["final_verdict"])
    login(client, admin)

    response = client.get(reverse("annotator:training_new", args=[project.slug]))

    assert response.status_code == 200
    assert response.context["form"]["label_smoothing"].value() == 0.25
    page = response.content.decode()
    assert "Estimated label noise" in page
    assert "<strong>25.0%</strong>" in page
    assert "overruled the critic on 2 of 8 audited items" in page


def test_without_audits_label_smoothing_stays_at_its_default(client, project, admin, snapshot):
    login(client, admin)
    response = client.get(reverse("annotator:training_new", args=[project.slug]))
    assert response.context["form"]["label_smoothing"].value() == 0.0
    assert "No audited items yet" in response.content.decode()


@pytest.fixture
def snapshot(project):
    curate(project, *UNSAFE_ANSWERS[5])
    return snapshot_create(project=project, name="s", validation_fraction=0)


# -- the weights reach the trainer -------------------------------------------------------------

@pytest.fixture
def tiny(settings, tiny_dir, tmp_path):
    settings.LEARNER_MODEL = str(tiny_dir)
    settings.DATA_DIR = tmp_path / "data"
    _loaded.cache_clear()
    yield tiny_dir
    _loaded.cache_clear()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("weighted", [True, False])
def test_training_weights_each_pair_by_its_source_and_confidence(api, tiny, weighted):
    project = make_project()
    admin = add_member(project, Role.ADMIN)
    for query, response, final in UNSAFE_ANSWERS[:4]:
        curate(project, query, response, final, state=ItemState.AUTO_ACCEPTED, confidence=0.5)
    api.force_authenticate(admin)
    snapshot = api.post(f"/api/projects/{project.slug}/snapshots/",
                        {"validation_fraction": 0, "label_sources": ["critic"]}, format="json")
    launched = api.post(f"/api/projects/{project.slug}/training-runs/", {
        "snapshot": snapshot.json()["id"], "method": "dpo", "lora_r": 4, "lora_alpha": 8,
        "batch_size": 4, "max_length": 64, "max_steps": 1, "eval_budget": 0,
        "weight_examples": weighted}, format="json")
    assert launched.status_code == 201, launched.json()

    call_command("worker", "--batch", "--interval", "0")

    run = TrainingRun.objects.get(pk=launched.json()["id"])
    assert run.status == JobStatus.SUCCEEDED, run.error
    # At step 1 the policy is still the reference, so every pair's DPO loss is log 2 and the
    # step's loss is log 2 times the mean weight: critic alone 0.5 x confidence 0.5 = 0.25.
    expected = math.log(2) * (0.25 if weighted else 1.0)
    assert run.loss_history[0]["loss"] == pytest.approx(expected, abs=1e-4)
    assert ("weighted by label source" in run.log) is weighted
