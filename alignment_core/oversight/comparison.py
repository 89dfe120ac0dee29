"""Assisted vs blind: does the critic make experts more accurate, or only faster, or neither?

Definitions (every figure is per mode, pooled over experts and per expert):

- reference label of an item: its gold label, else its adjudicated label; items with neither are
  left out of the accuracy figures (they still count for time). Adjudicated items are the ones
  experts disagreed on, so accuracy against them is lower than on a random item; gold items are
  the unbiased part, and the caller may pass gold alone.
- accuracy: verdicts equal to the reference label / verdicts on items with a reference label,
  with a binomial interval (`gold.proportion`).
- seconds per item: the mean of the recorded seconds of the mode's verdicts (a mean, not a
  median, because expert minutes add up).
- correct per minute: accuracy * 60 / seconds per item, the right verdicts one expert minute
  yields in that mode.
- wrong-critic agreement: among verdicts with a reference label whose (recorded) critic verdict
  differs from it, the share where the expert's verdict equals the critic's. In assisted mode
  this is **over-trust**: the expert went along with a critic that was wrong. In blind mode the
  expert never saw the critic, so the same ratio is the base rate of landing on the critic's
  mistake unaided (hard items mislead both); `excess_over_trust` is the difference.
- the critic's value: `correct_per_minute_gain` = correct per minute assisted - correct per
  minute blind, i.e. the extra right verdicts per expert minute that showing the critic buys.
  Its two sources are reported beside it: `accuracy_gain` (assisted - blind accuracy) and
  `seconds_saved` (blind - assisted seconds per item).

Any figure whose inputs are missing is None (JSON null), never a made-up zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alignment_core.oversight.gold import Proportion, proportion
from alignment_core.oversight.types import ExpertVerdict, check_labels


@dataclass(frozen=True)
class ModeFigures:
    """One mode's figures (see the module doc for each definition)."""

    mode: str  # "assisted" or "blind"
    reviews: int
    accuracy: Proportion
    timed: int  # verdicts with recorded seconds
    seconds_per_item: float | None
    correct_per_minute: float | None
    wrong_critic_agreement: Proportion  # over-trust when mode == "assisted"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "reviews": self.reviews, "accuracy": self.accuracy.to_dict(),
                "timed": self.timed, "seconds_per_item": self.seconds_per_item,
                "correct_per_minute": self.correct_per_minute,
                "wrong_critic_agreement": self.wrong_critic_agreement.to_dict()}


@dataclass(frozen=True)
class ModeComparison:
    """Assisted against blind for one expert, or for everyone when `expert_id` is None."""

    expert_id: str | None
    assisted: ModeFigures
    blind: ModeFigures
    accuracy_gain: float | None
    seconds_saved: float | None
    correct_per_minute_gain: float | None  # the critic's value per expert minute
    excess_over_trust: float | None

    def to_dict(self) -> dict:
        return {"expert_id": self.expert_id, "assisted": self.assisted.to_dict(),
                "blind": self.blind.to_dict(), "accuracy_gain": self.accuracy_gain,
                "seconds_saved": self.seconds_saved,
                "correct_per_minute_gain": self.correct_per_minute_gain,
                "excess_over_trust": self.excess_over_trust}


def reference_labels(gold: Mapping[str, str],
                     adjudicated: Mapping[str, str] | None = None) -> dict[str, str]:
    """Gold labels, then adjudicated labels for items that are not gold (gold wins)."""
    check_labels(gold, "Gold")
    check_labels(adjudicated or {}, "Adjudicated")
    return {**(adjudicated or {}), **gold}


def _mode_figures(mode: str, rows: list[ExpertVerdict], reference: Mapping[str, str],
                  confidence: float, method: str) -> ModeFigures:
    scored = [r for r in rows if r.item_id in reference]
    right = sum(r.verdict == reference[r.item_id] for r in scored)
    accuracy = proportion(right, len(scored), confidence=confidence, method=method)
    seconds = [r.seconds for r in rows if r.seconds is not None]
    per_item = sum(seconds) / len(seconds) if seconds else None
    per_minute = (accuracy.rate * 60.0 / per_item
                  if accuracy.rate is not None and per_item else None)
    critic_wrong = [r for r in scored
                    if r.critic_verdict is not None and r.critic_verdict != reference[r.item_id]]
    followed = sum(r.verdict == r.critic_verdict for r in critic_wrong)
    return ModeFigures(mode=mode, reviews=len(rows), accuracy=accuracy, timed=len(seconds),
                       seconds_per_item=per_item, correct_per_minute=per_minute,
                       wrong_critic_agreement=proportion(followed, len(critic_wrong),
                                                         confidence=confidence, method=method))


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _compare(expert_id: str | None, rows: list[ExpertVerdict], reference: Mapping[str, str],
             confidence: float, method: str) -> ModeComparison:
    assisted = _mode_figures("assisted", [r for r in rows if not r.blind], reference,
                             confidence, method)
    blind = _mode_figures("blind", [r for r in rows if r.blind], reference, confidence, method)
    return ModeComparison(
        expert_id=expert_id, assisted=assisted, blind=blind,
        accuracy_gain=_minus(assisted.accuracy.rate, blind.accuracy.rate),
        seconds_saved=_minus(blind.seconds_per_item, assisted.seconds_per_item),
        correct_per_minute_gain=_minus(assisted.correct_per_minute, blind.correct_per_minute),
        excess_over_trust=_minus(assisted.wrong_critic_agreement.rate,
                                 blind.wrong_critic_agreement.rate))


def compare_modes(verdicts: Iterable[ExpertVerdict], reference: Mapping[str, str], *,
                  confidence: float = 0.95,
                  method: str = "clopper-pearson") -> list[ModeComparison]:
    """Everyone pooled first (expert_id None), then each expert sorted by id.

    `reference` is item id -> label; build it with `reference_labels(gold, adjudicated)`.
    """
    check_labels(reference, "Reference")
    rows = list(verdicts)
    by_expert: dict[str, list[ExpertVerdict]] = {}
    for r in rows:
        by_expert.setdefault(r.expert_id, []).append(r)
    return [_compare(None, rows, reference, confidence, method)] + [
        _compare(e, by_expert[e], reference, confidence, method) for e in sorted(by_expert)]
