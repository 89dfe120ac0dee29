"""The label-source study: how much of the experts' value do the critic's labels recover?

Weak-to-strong generalisation (Burns et al. 2023) asks whether a student trained on a weak
supervisor's labels recovers the performance it would reach on a strong supervisor's. Here the
weak supervisor is the critic and the strong one the experts. On one split, candidates are
trained from (a) critic labels only, (b) expert labels only and (c) mixes with a chosen share of
expert labels; all are evaluated on the same held-out set, and

    PGR = (base - a) / (base - b)

on a metric where lower is better (attack success), or (a - base) / (b - base) where higher is
better (reward accuracy): 1 means the critic's labels are worth the experts', 0 that they teach
nothing. The ratio is undefined when the experts' labels barely beat the base (the denominator
is noise), and `performance_gap_recovered` then says so instead of returning a huge number.

A caller (the Django job, a benchmark) supplies two functions: `train(arm)` returns a candidate
and `evaluate(candidate)` its metrics; `run_study` does the rest:

    items = [StudyItem(key, expert=pair_from_review, critic=pair_from_critic, expert_minutes=1.5)]
    arms = build_arms(items, mix_shares=(0.5,), seed=0)
    report = run_study(arms, train, evaluate, metric="attack_success", lower_is_better=True,
                       base_metrics=evaluate(None))
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alignment_core.training.config import PreferencePair


@dataclass
class StudyItem:
    """One training item of the shared split, labelled by the experts and by the critic."""

    key: str  # stable and unique, e.g. the snapshot example's id: it seeds the mix
    expert: PreferencePair
    critic: PreferencePair
    expert_minutes: float = 0.0  # expert time spent on this label (review, adjudication)


@dataclass
class StudyArm:
    """One candidate's training labels."""

    name: str  # "critic", "expert" or "mix_50"
    expert_share: float  # share of the items labelled by the experts, 0..1
    pairs: list[PreferencePair]
    expert_minutes: float  # the expert time behind these labels
    expert_labels: int


@dataclass
class Gap:
    """The performance gap recovered, or None with the reason it is undefined."""

    value: float | None
    reason: str = ""


@dataclass
class ArmResult:
    name: str
    expert_share: float
    expert_minutes: float
    expert_labels: int
    metrics: dict[str, float]
    pgr: Gap


@dataclass
class StudyReport:
    metric: str
    lower_is_better: bool
    base: dict[str, float]
    arms: list[ArmResult] = field(default_factory=list)

    def arm(self, name: str) -> ArmResult:
        return next(a for a in self.arms if a.name == name)

    @property
    def pgr(self) -> Gap:
        """PGR of the critic-only candidate: the study's headline figure."""
        return self.arm("critic").pgr


def build_arms(
    items: Sequence[StudyItem], mix_shares: Sequence[float] = (0.5,), seed: int = 0
) -> list[StudyArm]:
    """The critic-only, expert-only and mixed label sets over the same items.

    A mix takes the experts' label for a seeded random `share` of the items and the critic's for
    the rest; the draw is nested (a larger share keeps the smaller share's expert items), so the
    mixes differ only by the labels added.
    """
    if not items:
        raise ValueError("A label-source study needs items labelled by both the experts and the critic")
    if len({item.key for item in items}) != len(items):
        raise ValueError("Study items need unique keys")
    for share in mix_shares:
        if not 0.0 < share < 1.0:
            raise ValueError(f"A mix's expert share lies strictly between 0 and 1, got {share}")
    order = sorted(items, key=lambda item: item.key)
    random.Random(seed).shuffle(order)

    def arm(name: str, share: float) -> StudyArm:
        n_expert = round(share * len(order))
        expert_keys = {item.key for item in order[:n_expert]}
        chosen = [item.expert if item.key in expert_keys else item.critic for item in items]
        minutes = sum(item.expert_minutes for item in items if item.key in expert_keys)
        return StudyArm(name, share, chosen, round(minutes, 2), n_expert)

    arms = [arm("critic", 0.0), arm("expert", 1.0)]
    arms += [arm(f"mix_{round(share * 100)}", share) for share in sorted(set(mix_shares))]
    return arms


def performance_gap_recovered(
    base: float, weak: float, strong: float, lower_is_better: bool, min_gap: float = 0.02
) -> Gap:
    """(base - weak) / (base - strong), signs flipped for a higher-is-better metric.

    `min_gap` is the smallest improvement of the strong candidate over the base that is not
    noise (a couple of points of a rate measured on a hundred items, say); below it the ratio
    divides by noise, so the result is None with the reason. The value is not clipped: below 0
    the weak labels made things worse, above 1 they beat the experts'.
    """
    sign = -1.0 if lower_is_better else 1.0
    strong_gain, weak_gain = sign * (strong - base), sign * (weak - base)
    if strong_gain <= 0:
        return Gap(None, f"the expert-trained candidate did not beat the base ({strong} vs {base})")
    if strong_gain < min_gap:
        return Gap(
            None,
            f"the expert-trained candidate beat the base by only {strong_gain:.4f} "
            f"(< {min_gap}); the ratio would divide by noise",
        )
    return Gap(weak_gain / strong_gain)


def run_study(
    arms: Sequence[StudyArm],
    train: Callable[[StudyArm], Any],
    evaluate: Callable[[Any], dict[str, float]],
    metric: str,
    lower_is_better: bool,
    base_metrics: dict[str, float],
    min_gap: float = 0.02,
    progress: Callable[[str, int, int], None] | None = None,
) -> StudyReport:
    """Train and evaluate every arm, then compute each one's PGR against the expert arm."""
    report = StudyReport(metric, lower_is_better, dict(base_metrics))
    results: dict[str, dict[str, float]] = {}
    for done, arm in enumerate(arms):
        if progress is not None:
            progress(arm.name, done, len(arms))
        results[arm.name] = dict(evaluate(train(arm)))
        if metric not in results[arm.name]:
            raise KeyError(f"evaluate() returned no {metric!r} for the {arm.name} arm")
    if "expert" not in results:
        raise ValueError("A label-source study needs the expert arm (see build_arms)")
    base, strong = base_metrics[metric], results["expert"][metric]
    for arm in arms:
        value = results[arm.name][metric]
        gap = performance_gap_recovered(base, value, strong, lower_is_better, min_gap)
        report.arms.append(
            ArmResult(arm.name, arm.expert_share, arm.expert_minutes, arm.expert_labels,
                      results[arm.name], gap)
        )
    if progress is not None:
        progress("done", len(arms), len(arms))
    return report
