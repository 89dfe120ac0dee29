"""Expert reliability (Dawid-Skene via crowd-kit) on planted panels: the estimates must recover
what was planted, and gold items must anchor the fit without ever being changed."""

from __future__ import annotations

import json
import random

import pytest

from alignment_core.critic.base import VERDICTS
from alignment_core.oversight import ExpertVerdict, estimate_reliability, majority_labels

PRIOR = {"safe": 0.4, "unsafe": 0.25, "refusal": 0.25, "over_refusal": 0.1}


def planted_confusion(error: float, lean: str | None) -> dict[str, dict[str, float]]:
    """confusion[true][given] with `error` off the diagonal in every row; wrong verdicts go to
    `lean` when it is another verdict (a biased expert), else evenly to the other three."""
    out = {}
    for true in VERDICTS:
        wrong = [k for k in VERDICTS if k != true]
        row = dict.fromkeys(VERDICTS, 0.0)
        row[true] = 1.0 - error
        if lean is not None and lean != true:
            row[lean] += error * 0.8
            for k in wrong:
                row[k] += error * 0.2 / 3
        else:
            for k in wrong:
                row[k] += error / 3
        out[true] = row
    return out


def panel(planted: dict[str, dict], n_items: int, overlap: int, seed: int,
          ) -> tuple[list[ExpertVerdict], dict[str, str]]:
    """Each item gets `overlap` experts drawn at random; each answers from their confusion row."""
    rng = random.Random(seed)
    truth, verdicts = {}, []
    for j in range(n_items):
        item = f"item-{j}"
        truth[item] = rng.choices(VERDICTS, weights=[PRIOR[v] for v in VERDICTS])[0]
        for expert in rng.sample(sorted(planted), overlap):
            row = planted[expert][truth[item]]
            answer = rng.choices(VERDICTS, weights=[row[v] for v in VERDICTS])[0]
            verdicts.append(ExpertVerdict(item, expert, answer))
    return verdicts, truth


def test_estimates_recover_the_planted_error_rates_and_confusions():
    planted = {"ann": planted_confusion(0.05, None), "bob": planted_confusion(0.12, "safe"),
               "cy": planted_confusion(0.20, "unsafe"), "dee": planted_confusion(0.30, "safe")}
    verdicts, truth = panel(planted, n_items=2000, overlap=3, seed=7)
    report = estimate_reliability(verdicts)
    by_id = {e.expert_id: e for e in report.experts}
    assert sorted(by_id) == sorted(planted)
    for expert, confusion in planted.items():
        est = by_id[expert]
        mine = [v for v in verdicts if v.expert_id == expert]
        realised = sum(v.verdict != truth[v.item_id] for v in mine) / len(mine)
        planted_rate = 1.0 - sum(PRIOR[c] * confusion[c][c] for c in VERDICTS)
        assert est.n_reviews == len(mine)
        assert est.error_rate == pytest.approx(realised, abs=0.025), expert
        assert est.error_rate == pytest.approx(planted_rate, abs=0.035), expert
        assert est.accuracy == pytest.approx(1.0 - est.error_rate)
        for row in est.confusion.values():
            assert sum(row.values()) == pytest.approx(1.0, abs=1e-6)
    # The biased experts' signature errors are found: bob and dee call unsafe answers safe.
    assert by_id["dee"].confusion["unsafe"]["safe"] == pytest.approx(0.24, abs=0.05)
    assert by_id["bob"].confusion["unsafe"]["safe"] == pytest.approx(0.096, abs=0.04)
    assert by_id["ann"].confusion["unsafe"]["safe"] < 0.04


def test_it_beats_majority_vote_when_two_weak_experts_share_a_bias():
    # One careful expert and two lenient ones on every item: whenever the lenient pair both call
    # a harmful answer safe, the majority is wrong; their matrices show "safe" from them is weak.
    planted = {"careful": planted_confusion(0.04, None),
               "lenient-1": planted_confusion(0.35, "safe"),
               "lenient-2": planted_confusion(0.35, "safe")}
    verdicts, truth = panel(planted, n_items=1500, overlap=3, seed=3)
    ds = estimate_reliability(verdicts).labels()
    mv = majority_labels(verdicts, seed=3)
    ds_acc = sum(ds[i] == t for i, t in truth.items()) / len(truth)
    mv_acc = sum(mv[i] == t for i, t in truth.items()) / len(truth)
    assert ds_acc >= mv_acc + 0.05


def test_items_carry_a_posterior_over_the_four_verdicts():
    verdicts, _ = panel({"a": planted_confusion(0.1, None), "b": planted_confusion(0.2, None),
                         "c": planted_confusion(0.2, None)}, n_items=200, overlap=3, seed=1)
    report = estimate_reliability(verdicts)
    assert [i.item_id for i in report.items] == sorted({v.item_id for v in verdicts})
    for item in report.items:
        assert set(item.posterior) == set(VERDICTS)
        assert sum(item.posterior.values()) == pytest.approx(1.0)
        assert item.confidence == pytest.approx(max(item.posterior.values()))
        assert item.posterior[item.verdict] == item.confidence
        assert item.n_reviews == 3 and not item.gold
    assert sum(report.prior.values()) == pytest.approx(1.0)
    assert report.iterations >= 1
    json.dumps(report.to_dict())  # JSON-able as it is


def test_a_gold_item_gets_its_gold_label_whatever_the_experts_say():
    verdicts, truth = panel({"a": planted_confusion(0.1, None), "b": planted_confusion(0.15, None),
                             "c": planted_confusion(0.2, None)}, n_items=300, overlap=3, seed=2)
    # All three experts call item-0 "refusal"; gold says it is an over-refusal.
    verdicts = [v for v in verdicts if v.item_id != "item-0"] + [
        ExpertVerdict("item-0", e, "refusal") for e in ("a", "b", "c")]
    gold = {"item-0": "over_refusal", "item-1": truth["item-1"]}
    before = dict(gold)
    report = estimate_reliability(verdicts, gold)
    labels = {i.item_id: i for i in report.items}
    assert labels["item-0"].verdict == "over_refusal"
    assert labels["item-0"].confidence == 1.0 and labels["item-0"].gold
    assert labels["item-1"].verdict == truth["item-1"] and labels["item-1"].gold
    assert gold == before  # the fit reads gold and never writes it
    assert not labels["item-2"].gold


def test_gold_answers_are_scored_and_correct_a_colluding_majority():
    # Two experts call 90% of unsafe answers safe; only "honest" gets them right. Without gold the
    # pair outvotes honest; a few gold unsafe items expose the pair's confusion, and the fit then
    # believes honest on the other unsafe items too.
    rng = random.Random(5)
    truth, verdicts = {}, []
    for j in range(600):
        item = f"item-{j}"
        truth[item] = rng.choice(["safe", "unsafe"])
        for expert in ("pair-1", "pair-2", "honest"):
            answer = truth[item]
            if expert != "honest" and answer == "unsafe" and rng.random() < 0.9:
                answer = "safe"
            elif expert == "honest" and rng.random() < 0.05:
                answer = "safe" if answer == "unsafe" else "unsafe"
            verdicts.append(ExpertVerdict(item, expert, answer))
    gold = dict(list(truth.items())[:60])
    regular = [i for i in truth if i not in gold]

    def accuracy(labels: dict[str, str]) -> float:
        return sum(labels[i] == truth[i] for i in regular) / len(regular)

    without, anchored = estimate_reliability(verdicts), estimate_reliability(verdicts, gold)
    assert accuracy(without.labels()) < 0.7
    assert accuracy(anchored.labels()) > 0.9
    pair = {e.expert_id: e for e in anchored.experts}["pair-1"]
    assert pair.n_gold == 60
    assert pair.confusion["unsafe"]["safe"] == pytest.approx(0.9, abs=0.06)


def test_gold_whose_verdict_nobody_used_is_still_clamped():
    verdicts = [ExpertVerdict(f"i{j}", e, "safe" if j % 2 else "unsafe")
                for j in range(20) for e in ("a", "b")]
    report = estimate_reliability(verdicts, {"i0": "over_refusal"})
    item = next(i for i in report.items if i.item_id == "i0")
    assert (item.verdict, item.confidence, item.gold) == ("over_refusal", 1.0, True)


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="Unknown verdict 'fine'"):
        ExpertVerdict("i", "e", "fine")
    with pytest.raises(ValueError, match="two verdicts on item 'i'"):
        estimate_reliability([ExpertVerdict("i", "e", "safe"), ExpertVerdict("i", "e", "unsafe")])
    with pytest.raises(ValueError, match="Gold label of item 'i' is 'ok'"):
        estimate_reliability([ExpertVerdict("i", "e", "safe")], {"i": "ok"})
    empty = estimate_reliability([])
    assert empty.experts == [] and empty.items == [] and empty.iterations == 0


def test_majority_vote_breaks_ties_reproducibly_and_not_by_verdict_order():
    verdicts = [v for j in range(400) for v in (ExpertVerdict(f"i{j}", "a", "safe"),
                                                ExpertVerdict(f"i{j}", "b", "unsafe"))]
    first, again = majority_labels(verdicts, seed=1), majority_labels(verdicts, seed=1)
    assert first == again
    share_safe = sum(v == "safe" for v in first.values()) / len(first)
    assert 0.4 < share_safe < 0.6
