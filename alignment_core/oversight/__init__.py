"""Oversight figures: what a human minute is worth.

- `reliability`: each expert's confusion matrix over the four verdicts and each item's label
  with its posterior confidence (crowd-kit's Dawid-Skene, anchored on gold items);
- `gold`: gold accuracy per expert with a Clopper-Pearson or Wilson interval;
- `comparison`: assisted vs blind accuracy, seconds per item, over-trust and the critic's value
  per expert minute;
- `sampler`: the seeded, stateless choice of blind reviews and unannounced gold items.

Plain dataclasses in (`ExpertVerdict`, dicts of item id -> verdict), plain dataclasses out,
each with a JSON-able `to_dict()`. Nothing here imports Django.
"""

from alignment_core.oversight.comparison import (
    ModeComparison,
    ModeFigures,
    compare_modes,
    reference_labels,
)
from alignment_core.oversight.gold import GoldScore, Proportion, gold_accuracy, proportion
from alignment_core.oversight.reliability import (
    ExpertReliability,
    ItemLabel,
    ReliabilityReport,
    estimate_reliability,
    majority_labels,
)
from alignment_core.oversight.sampler import (
    Serving,
    choose_gold,
    is_blind,
    is_gold_slot,
    plan_serving,
    unit_hash,
)
from alignment_core.oversight.types import ExpertVerdict

__all__ = [
    "ExpertReliability", "ExpertVerdict", "GoldScore", "ItemLabel", "ModeComparison",
    "ModeFigures", "Proportion", "ReliabilityReport", "Serving", "choose_gold", "compare_modes",
    "estimate_reliability", "gold_accuracy", "is_blind", "is_gold_slot", "majority_labels",
    "plan_serving", "proportion", "reference_labels", "unit_hash",
]
