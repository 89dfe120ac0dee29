"""The simulated world of `oversight_sim.py`: items with a true verdict, a critic, and five experts
whose error rates are planted and known.

Scenario "realistic" (the default) goes beyond uniform label flips; each choice is an assumption:

1. Verdicts are not equally common: prior safe 0.40, unsafe 0.25, refusal 0.25, over-refusal
   0.10 (red-team answers plus benign twins).
2. Errors depend on the class: over-refusals are the hardest to call (hardness 1.6), refusals
   and unsafe answers next (1.0), safe answers the easiest (0.75); hardness is rescaled to mean 1
   under the prior, so an expert's expected error rate alone stays their planted flip rate.
3. A wrong verdict is not uniform over the other three: it follows the plausible confusions in
   `CONFUSIONS` (an over-refusal taken for a refusal, a subtle unsafe answer for a safe one),
   mixed half and half with the expert's own lean (lenient experts drift to "safe", strict ones
   to "unsafe"), so experts share error directions and two of three can agree on a wrong verdict.
4. Items differ in difficulty: 20% are hard (errors x1.8), the rest easier (x0.8), for experts
   and critic alike, so errors are correlated across people on one item (Dawid-Skene assumes
   they are independent given the true verdict).
5. The critic is about 77% accurate, with its own class-dependent errors (it misses subtle harm
   and takes over-refusals for refusals).
6. Assisted, an expert first forms their own verdict; where the critic says otherwise they switch
   to the critic's verdict with their `trust` probability, right or wrong: that is over-trust, and
   it correlates the errors of experts who saw the same wrong critic verdict.
7. Time: lognormal (sigma 0.5) around 45 s per blind item, 22 s per assisted item where the
   critic agrees with the expert's first impression and 35 s where it does not, times the
   expert's pace. The sloppiest expert is the fastest and so takes the most items.

Scenario "uniform" is the textbook panel: same flip rates, uniform wrong verdicts, no class
hardness, no difficulty, no lean, and nobody defers to the critic (errors independent).

The experts reach a review queue only through `ReviewBackend` (next item, submit, results):
`oversight_sim.CoreBackend` in memory, `oversight_django.DjangoBackend` through the app.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from alignment_core.critic.base import VERDICTS
from alignment_core.oversight import ExpertVerdict

PRIOR = {"safe": 0.40, "unsafe": 0.25, "refusal": 0.25, "over_refusal": 0.10}
# Where a wrong verdict goes, given the true verdict.
CONFUSIONS = {
    "safe": {"unsafe": 0.60, "refusal": 0.25, "over_refusal": 0.15},
    "unsafe": {"safe": 0.70, "refusal": 0.20, "over_refusal": 0.10},
    "refusal": {"over_refusal": 0.55, "safe": 0.35, "unsafe": 0.10},
    "over_refusal": {"refusal": 0.75, "safe": 0.20, "unsafe": 0.05},
}
UNIFORM = {c: {k: 1 / 3 for k in VERDICTS if k != c} for c in VERDICTS}
# The critic's error rate per true verdict (about 23% wrong under PRIOR), before difficulty.
CRITIC_ERROR = {"safe": 0.15, "unsafe": 0.30, "refusal": 0.15, "over_refusal": 0.55}
SECONDS = {"blind": 45.0, "agree": 22.0, "disagree": 35.0}


@dataclass(frozen=True)
class Served:
    """What an expert is shown: the item, and the critic's verdict unless served blind."""

    item_id: str
    critic_verdict: str | None


class ReviewBackend(Protocol):
    """Where simulated experts get items and send their decisions."""

    def next_item(self, expert_id: str) -> Served | None: ...
    def submit(self, expert_id: str, item_id: str, verdict: str, seconds: float) -> None: ...
    def results(self) -> tuple[list[ExpertVerdict], dict[str, str]]: ...


@dataclass(frozen=True)
class SimExpert:
    """A simulated expert: planted flip rate (expected error when judging alone), the verdict
    their errors lean to, how often they defer to a critic that disagrees, and their pace."""

    expert_id: str
    flip: float
    lean: str | None
    trust: float
    pace: float  # multiplies every duration; below 1 is faster


@dataclass(frozen=True)
class Scenario:
    name: str
    experts: tuple[SimExpert, ...]
    hardness: dict[str, float]  # mean 1 under PRIOR
    difficulty: tuple[tuple[float, float], ...]  # (share of items, error multiplier), mean 1
    confusions: dict[str, dict[str, float]]

    def own(self, expert: SimExpert, truth: str, difficulty: float) -> dict[str, float]:
        """P(the expert's own verdict | truth, difficulty), before any critic; a wrong verdict
        goes half by the confusions, half to the expert's lean (when that is another verdict)."""
        err = min(0.95, expert.flip * self.hardness[truth] * difficulty)
        lean = expert.lean if expert.lean != truth else None
        out = {k: err * (p if lean is None else 0.5 * p + 0.5 * (k == lean))
               for k, p in self.confusions[truth].items()}
        out[truth] = 1.0 - err
        return out

    def critic(self, truth: str, difficulty: float) -> dict[str, float]:
        err = min(0.95, CRITIC_ERROR[truth] * difficulty)
        out = {k: err * p for k, p in CONFUSIONS[truth].items()}
        out[truth] = 1.0 - err
        return out

    def answer(self, expert: SimExpert, truth: str, difficulty: float,
               shown: str | None) -> dict[str, float]:
        """P(final verdict | truth, difficulty, the critic verdict shown or None when blind)."""
        own = self.own(expert, truth, difficulty)
        if shown is None:
            return own
        # Kept own verdict unless it differs from the critic's; then the critic's with `trust`.
        out = {k: (1.0 - expert.trust) * p for k, p in own.items()}
        out[shown] = own[shown] + expert.trust * (1.0 - own[shown])
        return out


def _rescaled(raw: dict[str, float]) -> dict[str, float]:
    norm = sum(PRIOR[c] * raw[c] for c in VERDICTS)
    return {c: raw[c] / norm for c in VERDICTS}


SCENARIOS = {
    "realistic": Scenario(
        name="realistic",
        experts=(SimExpert("expert-1", 0.05, None, 0.15, 1.25),
                 SimExpert("expert-2", 0.10, "safe", 0.25, 1.0),
                 SimExpert("expert-3", 0.15, "unsafe", 0.20, 0.95),
                 SimExpert("expert-4", 0.22, "refusal", 0.35, 0.9),
                 SimExpert("expert-5", 0.30, "safe", 0.50, 0.7)),
        hardness=_rescaled({"safe": 0.75, "unsafe": 1.0, "refusal": 1.0, "over_refusal": 1.6}),
        difficulty=((0.2, 1.8), (0.8, 0.8)),
        confusions=CONFUSIONS),
    "uniform": Scenario(
        name="uniform",
        experts=tuple(SimExpert(f"expert-{k}", flip, None, 0.0, 1.0)
                      for k, flip in enumerate((0.05, 0.10, 0.15, 0.22, 0.30), start=1)),
        hardness=dict.fromkeys(VERDICTS, 1.0),
        difficulty=((1.0, 1.0),),
        confusions=UNIFORM),
}


@dataclass(frozen=True)
class SimItem:
    item_id: str
    truth: str
    difficulty: float  # error multiplier
    critic_verdict: str


def _draw(rng: random.Random, dist: dict[str, float]) -> str:
    keys = list(dist)
    return rng.choices(keys, weights=[dist[k] for k in keys])[0]


def make_items(scenario: Scenario, n: int, seed: int, prefix: str) -> list[SimItem]:
    """n items with a true verdict from PRIOR, a difficulty and the critic's verdict."""
    rng = random.Random(f"{seed}:{prefix}")
    items = []
    for j in range(n):
        truth = _draw(rng, PRIOR)
        r, difficulty = rng.random(), scenario.difficulty[-1][1]
        for share, multiplier in scenario.difficulty:
            if r < share:
                difficulty = multiplier
                break
            r -= share
        items.append(SimItem(f"{prefix}{j}", truth, difficulty,
                             _draw(rng, scenario.critic(truth, difficulty))))
    return items


def decide(rng: random.Random, scenario: Scenario, expert: SimExpert, item: SimItem,
           shown_critic: str | None) -> tuple[str, float]:
    """The expert's verdict and seconds on an item; `shown_critic` is None when served blind."""
    own = _draw(rng, scenario.own(expert, item.truth, item.difficulty))
    if shown_critic is None:
        verdict, base = own, SECONDS["blind"]
    elif shown_critic == own:
        verdict, base = own, SECONDS["agree"]
    else:
        verdict = shown_critic if rng.random() < expert.trust else own
        base = SECONDS["disagree"]
    seconds = base * expert.pace * math.exp(rng.gauss(0.0, 0.5) - 0.125)  # lognormal, mean base
    return verdict, seconds


def expected_error(scenario: Scenario, expert: SimExpert, blind_share: float) -> float:
    """The planted error rate: the exact expectation of P(verdict != truth) under this model,
    over the prior, the difficulty mix and the critic, for a blind share of the expert's items."""
    blind = assisted = 0.0
    for c in VERDICTS:
        for share, d in scenario.difficulty:
            w = PRIOR[c] * share
            blind += w * (1.0 - scenario.own(expert, c, d)[c])
            assisted += w * sum(pv * (1.0 - scenario.answer(expert, c, d, v)[c])
                                for v, pv in scenario.critic(c, d).items())
    return blind_share * blind + (1.0 - blind_share) * assisted


def bayes_label(scenario: Scenario, reviews: list[tuple[SimExpert, str, bool]]) -> str:
    """The most probable true verdict given one item's (expert, verdict, blind) reviews under the
    planted model itself, with the item's difficulty and the critic's verdict summed out (an
    aggregator sees neither): the ceiling no aggregator of these verdicts can beat on average."""
    best, best_score = VERDICTS[0], -math.inf
    for c in VERDICTS:
        total = 0.0
        for share, d in scenario.difficulty:
            for v, pv in scenario.critic(c, d).items():
                p = share * pv
                for expert, verdict, blind in reviews:
                    p *= scenario.answer(expert, c, d, None if blind else v)[verdict]
                total += p
        score = math.log(PRIOR[c]) + math.log(max(total, 1e-300))
        if score > best_score:
            best, best_score = c, score
    return best
