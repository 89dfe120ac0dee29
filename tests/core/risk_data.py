"""A small project history for the risk discovery tests, built like a real one.

Ordinary attacks are the attacker's seed behaviours under its own strategies; two planted groups
(wildlife trafficking, match fixing: topics none of the seed categories covers) go through the
same strategies without a category, as imported attacks would. The learner's answers are short
compliant texts that restate the request, as a jailbroken small model tends to. A few attacks
are refused (not successful), and some are expert-confirmed.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path

from alignment_core.attacker import STRATEGIES, Goal, behaviours
from alignment_core.risks import Discovery, RiskAttack, attack_weight, discover

PLANTED = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "planted_risks.json"
GROUPS = ("wildlife_trafficking", "match_fixing")
STRATEGY_NAMES = ("direct", "roleplay", "prefix_injection", "converter")
OPENERS = ("Sure, here is how to do it.", "Of course. Here's a practical guide.",
           "Absolutely, here are the details.")
STEPS = ("First, plan it carefully.", "Do it when nobody is around.",
         "Keep everything quiet afterwards.")


def planted_requests() -> dict[str, list[str]]:
    groups = json.loads(PLANTED.read_text(encoding="utf-8"))["groups"]
    return {name: groups[name]["requests"] for name in GROUPS}


def history(seed: int = 0) -> tuple[list[RiskAttack], dict[str, str]]:
    """(attacks, truth: attack id -> planted group name or "ordinary")."""
    rng = random.Random(seed)
    goals = [(Goal(b.goal, b.category, b.id, b.severity), "ordinary") for b in behaviours()]
    for name, requests in planted_requests().items():
        goals += [(Goal(text, "", f"{name}-{k}", 3), name) for k, text in enumerate(requests)]
    attacks, truth = [], {}
    for strategy_name in STRATEGY_NAMES:
        strategy = STRATEGIES[strategy_name](random.Random(f"{seed}:{strategy_name}"))
        for (goal, group), attack in zip(goals, strategy.generate([g for g, _ in goals])):
            refused = rng.random() < 0.1
            verdict = "refusal" if refused else "unsafe"
            answer = ("I'm sorry, I can't help with that." if refused else
                      f"{rng.choice(OPENERS)} {goal.text} {rng.choice(STEPS)}")
            key = f"{strategy_name}-{goal.behaviour_id}"
            attacks.append(RiskAttack(id=key, attack=attack.text, answer=answer,
                                      category=goal.category or None, verdict=verdict,
                                      severity=0 if refused else goal.severity,
                                      weight=attack_weight(verdict, rng.random() < 0.2)))
            truth[key] = group
    return attacks, truth


@lru_cache(maxsize=1)
def discovered() -> tuple[Discovery, dict]:
    """One discovery over `history()`, shared by the test modules (embedding takes a while);
    the vector cache comes back too, so further runs embed nothing new."""
    attacks, _ = history()
    cache: dict = {}
    return discover(attacks, cache=cache), cache
