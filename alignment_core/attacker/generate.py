"""Plan and write one round of attacks: `generate_attacks(config, learner, history)`."""

from __future__ import annotations

import random
from collections.abc import Sequence

from alignment_core.attacker.canaries import canaries
from alignment_core.attacker.diversity import deduplicate
from alignment_core.attacker.seeds import behaviours, categories
from alignment_core.attacker.strategies import STRATEGIES
from alignment_core.attacker.types import (
    CANARY_CATEGORY,
    Attack,
    AttackConfig,
    Behaviour,
    Goal,
    ScoredAttack,
)

MAX_ATTEMPTS = 4  # rounds of topping up after de-duplication before giving up on the budget


def _interleaved(groups: list[list[Goal]], rng: random.Random):
    """Yield goals round-robin over the groups (categories), each group shuffled, forever."""
    queues = [[] for _ in groups]
    while True:
        for group, queue in zip(groups, queues):
            if not queue:
                queue.extend(rng.sample(group, k=len(group)))
            yield queue.pop()


def _goal_streams(config: AttackConfig, rng: random.Random, extra: Sequence[Behaviour] = ()):
    """Three endless goal streams: harmful behaviours, benign twins, canaries (or None)."""
    wanted = config.categories
    known = set(categories()) | {b.category for b in extra} | {CANARY_CATEGORY}
    unknown = sorted(set(wanted or ()) - known)
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {sorted(known)}")
    ids = [b.id for b in behaviours()] + [b.id for b in extra]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"extra behaviours need ids of their own; repeated: {repeated}")
    chosen = behaviours(wanted) if wanted is not None else behaviours()
    chosen += [b for b in extra if wanted is None or b.category in wanted]
    by_category: dict[str, list] = {}
    for behaviour in chosen:
        by_category.setdefault(behaviour.category, []).append(behaviour)
    harmful = [[Goal(b.goal, b.category, b.id, b.severity) for b in group]
               for group in by_category.values()]
    benign = [[Goal(b.benign_twin, b.category, b.id, 0, is_benign=True) for b in group]
              for group in by_category.values()]
    use_canaries = wanted is None or CANARY_CATEGORY in wanted
    canary_goals = [[Goal(c.objective, CANARY_CATEGORY, c.id, c.severity, canary_id=c.id,
                          system_prompt=c.system_prompt) for c in canaries()]] if use_canaries else []
    return (_interleaved(harmful, rng) if harmful else None,
            _interleaved(benign, rng) if benign else None,
            _interleaved(canary_goals, rng) if canary_goals else None)


def _plan(config: AttackConfig, count: int, streams, rng: random.Random) -> list[Goal]:
    """Pick `count` goals in the configured proportions (harmful / benign / canary)."""
    harmful, benign, canary = streams
    n_canary = round(count * config.canary_fraction) if canary else 0
    n_benign = round(count * config.benign_fraction) if benign else 0
    if harmful is None:  # only canaries were asked for
        n_canary, n_benign = count, 0
    n_benign = min(n_benign, count - n_canary)
    n_harmful = count - n_canary - n_benign
    goals = ([next(harmful) for _ in range(n_harmful)] + [next(benign) for _ in range(n_benign)]
             + [next(canary) for _ in range(n_canary)])
    rng.shuffle(goals)
    return goals


def generate_attacks(
    config: AttackConfig,
    learner=None,
    history: Sequence[ScoredAttack] = (),
    dedup_threshold: float = 0.95,
    extra_behaviours: Sequence[Behaviour] = (),
) -> list[Attack]:
    """Write `config.budget` attacks (benign twins and canaries included), de-duplicated.

    The budget is split evenly between the strategies and the goals are spread over categories.
    The result is the same for the same seed, learner and history. Fewer than `budget` attacks
    come back only if de-duplication keeps rejecting what the strategies write.
    `extra_behaviours` join the seed behaviours (and their categories the known ones): the seeds
    of risk categories adopted from discovered clusters (alignment_core.risks.adopt_cluster).
    """
    unknown = [name for name in config.strategies if name not in STRATEGIES]
    if unknown or not config.strategies:
        raise ValueError(f"unknown strategies {unknown}; known: {sorted(STRATEGIES)}")
    for name in config.strategies:
        if STRATEGIES[name].needs_learner and learner is None:
            raise ValueError(f"strategy {name!r} needs a learner")
    rng = random.Random(config.seed)
    streams = _goal_streams(config, rng, extra_behaviours)
    kept: list[Attack] = []
    for attempt in range(MAX_ATTEMPTS):
        missing = config.budget - len(kept)
        if missing <= 0:
            break
        # 1. Plan goals for the missing slots and deal them out to strategies in turn.
        goals = _plan(config, missing, streams, rng)
        offset = rng.randrange(len(config.strategies))
        names = [config.strategies[(offset + i) % len(config.strategies)] for i in range(missing)]
        # 2. Let each strategy write its share (in one call, so LM strategies batch).
        written: list[Attack | None] = [None] * missing
        for name in config.strategies:
            slots = [i for i, assigned in enumerate(names) if assigned == name]
            if not slots:
                continue
            strategy = STRATEGIES[name](random.Random(f"{config.seed}:{name}:{attempt}"),
                                        learner=learner, history=history,
                                        converters=config.converters)
            for slot, attack in zip(slots, strategy.generate([goals[i] for i in slots])):
                written[slot] = attack
        # 3. De-duplicate against everything kept so far.
        kept = deduplicate(kept + [attack for attack in written if attack is not None],
                           threshold=dedup_threshold)
    return kept[: config.budget]
