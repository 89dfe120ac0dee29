"""The held-out evaluation: a fixed set of attacks that measures a learner version, never trained on.

Training runs (their evaluate stage), label-source studies and the closed loop all measure on the
same set: the attacks `generate_attacks` writes for HELD_OUT_SEED and a budget, with strategies
that need neither a learner nor attack history, so the set is a pure function of the budget.
A snapshot can reserve the set of a budget (SnapshotFilters.reserve_held_out): its items whose
attack text is in that set stay out of training, so every run on it is measured on all of it,
and the closed loop measures every round on the very same attacks.

The set shares the attacker's behaviours (harmful goals) with campaigns; what it holds out is
the wording: the exact attacks, so a drop in attack success says the learner generalised to
phrasings it never saw, not that it learned refusals for unseen kinds of harm.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

HELD_OUT_SEED = 917_277  # fixed, so base and candidate (and later runs) meet the same attacks
# Strategies that need neither a learner nor attack history, so the held-out set is a pure
# function of the seed and the budget.
HELD_OUT_STRATEGIES = ("direct", "roleplay", "hypothetical", "refusal_suppression",
                       "prefix_injection")
# A quarter benign twins (the attacker's default is 15%), so over-refusal rests on more than a
# couple of prompts in a small held-out budget.
HELD_OUT_BENIGN_FRACTION = 0.25
EVAL_MAX_NEW_TOKENS = 64


@lru_cache(maxsize=8)
def _held_out(budget: int) -> tuple:
    from alignment_core.attacker import STRATEGIES, AttackConfig, generate_attacks

    strategies = [name for name in HELD_OUT_STRATEGIES if name in STRATEGIES]
    config = AttackConfig(strategies=strategies, budget=budget, seed=HELD_OUT_SEED,
                          benign_fraction=HELD_OUT_BENIGN_FRACTION)
    return tuple(generate_attacks(config))


def held_out_set(budget: int, *, exclude: frozenset[str] | set[str] = frozenset()) -> list:
    """The held-out attacks of `budget` (alignment_core Attacks), minus any whose text is in
    `exclude` (what a snapshot trained on)."""
    if budget <= 0:
        return []
    return [attack for attack in _held_out(budget) if attack.text not in exclude]


def held_out_texts(budget: int) -> frozenset[str]:
    return frozenset(attack.text for attack in held_out_set(budget))


def evaluation_critic(project, *, models=None, judge: bool = True,
                      should_cancel: Callable[[], bool] | None = None) -> Any:
    """The critic that judges held-out answers: the project's, with its judge endpoint as a
    voter when it has one (unless `judge=False`: no network call), without its LM writer
    (verdicts need no written revisions). `models` is the job's
    annotator.role_models.RoleModels, when it already has one."""
    from annotator.role_models import RoleModels

    models = models if models is not None else RoleModels(project)
    return models.critic(None, writer=False, judge=judge, should_cancel=should_cancel)


def evaluate_generator(generator, attacks: list, critic, *,
                       progress: Callable[[int, int], None] | None = None,
                       should_cancel: Callable[[], bool] | None = None) -> dict:
    """Answer every attack with the generator (in-process or served), judge the answers, and
    report (see alignment_core.evaluation.evaluate_learner): 2 * len(attacks) progress steps."""
    from alignment_core.evaluation import evaluate_learner
    from alignment_core.learner import GenerationConfig

    return evaluate_learner(generator, critic, attacks,
                            GenerationConfig(max_new_tokens=EVAL_MAX_NEW_TOKENS),
                            progress=progress, should_cancel=should_cancel)


def evaluate_loaded(loaded, attacks: list, critic, *,
                    progress: Callable[[int, int], None] | None = None,
                    should_cancel: Callable[[], bool] | None = None) -> dict:
    """`evaluate_generator` with an in-process model (the label study's arm adapters)."""
    from alignment_core.learner import Learner

    return evaluate_generator(Learner(loaded), attacks, critic, progress=progress,
                              should_cancel=should_cancel)


def report_summary(report: dict) -> dict[str, Any]:
    """The figures pages and reports compare: attack success and over-refusal with intervals,
    and the answers' mean helpfulness (0-4; None in reports older than the dimensions)."""
    overall, over = report["overall"], report["over_refusal"]
    return {"asr": overall["rate"], "asr_lo": overall["lo"], "asr_hi": overall["hi"],
            "asr_n": overall["n"], "over_refusal": over["rate"], "over_refusal_lo": over["lo"],
            "over_refusal_hi": over["hi"], "over_refusal_n": over["n"],
            "unsafe_severity_mean": report.get("unsafe_severity_mean"),
            "helpfulness_mean": report.get("helpfulness_mean")}
