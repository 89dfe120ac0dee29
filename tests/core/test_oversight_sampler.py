"""The blind / gold sampler: the same answer on every reload, process and machine, and shares hit."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignment_core.oversight import choose_gold, is_blind, is_gold_slot, plan_serving

REPO = Path(__file__).resolve().parents[2]


def within_binomial(hits: int, n: int, share: float) -> bool:
    """hits within 4 standard deviations of n * share (fails by chance about once in 16,000)."""
    return abs(hits - n * share) <= 4 * math.sqrt(n * share * (1 - share))


def test_the_same_question_gets_the_same_answer():
    for j in range(200):
        first = plan_serving(seed=7, expert_id="ann", position=j, next_item_id=f"item-{j}",
                             gold_candidates=["g1", "g2", "g3"], blind_share=0.3,
                             gold_share=0.2)
        again = plan_serving(seed=7, expert_id="ann", position=j, next_item_id=f"item-{j}",
                             gold_candidates=["g3", "g2", "g1"], blind_share=0.3,
                             gold_share=0.2)
        assert first == again


def test_answers_do_not_depend_on_the_python_process():
    # Python's hash() differs between processes; the sampler must not use it.
    code = ("from alignment_core.oversight import is_blind, is_gold_slot;"
            "print(''.join('1' if is_blind(seed=3, expert_id='e', item_id=str(i), share=0.5)"
            " else '0' for i in range(64)),"
            " ''.join('1' if is_gold_slot(seed=3, expert_id='e', position=i, share=0.5)"
            " else '0' for i in range(64)))")
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True, cwd=REPO)
        outputs.add(done.stdout)
    here = " ".join([
        "".join("1" if is_blind(seed=3, expert_id="e", item_id=str(i), share=0.5) else "0"
                for i in range(64)),
        "".join("1" if is_gold_slot(seed=3, expert_id="e", position=i, share=0.5) else "0"
                for i in range(64))]) + "\n"
    assert outputs == {here}


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_shares_are_hit_for_every_expert(share):
    n = 20000
    for expert in ("ann", "bob"):
        blind = sum(is_blind(seed=11, expert_id=expert, item_id=f"i{j}", share=share)
                    for j in range(n))
        gold = sum(is_gold_slot(seed=11, expert_id=expert, position=j, share=share)
                   for j in range(n))
        assert within_binomial(blind, n, share), (expert, blind)
        assert within_binomial(gold, n, share), (expert, gold)


def test_blind_and_gold_draws_are_independent_and_differ_by_expert_and_seed():
    n, share = 20000, 0.3
    both = sum(is_blind(seed=1, expert_id="ann", item_id=str(j), share=share)
               and is_gold_slot(seed=1, expert_id="ann", position=j, share=share)
               for j in range(n))
    assert within_binomial(both, n, share * share)

    def pattern(seed: int, expert: str) -> list[bool]:
        return [is_blind(seed=seed, expert_id=expert, item_id=str(j), share=0.5)
                for j in range(64)]

    assert pattern(1, "ann") != pattern(1, "bob")
    assert pattern(1, "ann") != pattern(2, "ann")


def test_zero_and_one_shares_are_exact_and_bad_shares_refused():
    assert not any(is_blind(seed=0, expert_id="e", item_id=str(j), share=0.0) for j in range(500))
    assert all(is_blind(seed=0, expert_id="e", item_id=str(j), share=1.0) for j in range(500))
    with pytest.raises(ValueError, match="blind share must lie between 0 and 1"):
        is_blind(seed=0, expert_id="e", item_id="i", share=1.5)
    with pytest.raises(ValueError, match="gold share"):
        is_gold_slot(seed=0, expert_id="e", position=0, share=-0.1)
    with pytest.raises(ValueError, match="position"):
        is_gold_slot(seed=0, expert_id="e", position=-1, share=0.1)


def test_gold_slots_serve_each_gold_item_once_and_survive_reload_and_undo():
    gold = [f"g{j}" for j in range(5)]
    answered: list[str] = []  # gold items this expert has answered
    decided: list = []  # what the expert decided, in order; its length is the position

    def next_serving(queue_head: str):
        return plan_serving(seed=9, expert_id="ann", position=len(decided),
                            next_item_id=queue_head,
                            gold_candidates=[g for g in gold if g not in answered],
                            blind_share=0.25, gold_share=0.1)

    def decide(serving) -> None:
        decided.append(serving)
        if serving.gold:
            answered.append(serving.item_id)

    def undo() -> None:
        serving = decided.pop()
        if serving.gold:
            answered.remove(serving.item_id)

    for j in range(400):
        # The queue's head is the first regular item not yet decided.
        head = f"item-{sum(not s.gold for s in decided)}"
        serving = next_serving(head)
        assert next_serving(head) == serving  # a reload shows the same item, same mode
        decide(serving)
        if j % 7 == 0:  # now and then the expert undoes, and is shown the same thing again
            undo()
            assert next_serving(head) == serving
            decide(serving)
    gold_served = [s.item_id for s in decided if s.gold]
    assert sorted(gold_served) == gold  # each gold item once, then no more gold
    assert len({s.item_id for s in decided if not s.gold}) == 400 - len(gold)
    # Experts meet gold items in their own orders.
    firsts = {choose_gold(seed=9, expert_id=f"e{k}", candidates=gold) for k in range(20)}
    assert len(firsts) > 1
    assert choose_gold(seed=9, expert_id="ann", candidates=[]) is None


def test_an_empty_queue_serves_nothing_outside_gold_slots():
    positions = range(200)
    servings = [plan_serving(seed=2, expert_id="e", position=p, next_item_id=None,
                             gold_candidates=["g"], blind_share=0.0, gold_share=0.1)
                for p in positions]
    for p, serving in zip(positions, servings):
        if is_gold_slot(seed=2, expert_id="e", position=p, share=0.1):
            assert serving is not None and serving.gold and serving.item_id == "g"
        else:
            assert serving is None
    assert any(s is not None for s in servings)
