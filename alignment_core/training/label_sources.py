"""Where a label came from, and how much a training example with that label should count.

The review workflow produces labels of four kinds, from most to least certain: several experts
who agreed, an adjudicator who settled a disagreement, one expert, and the critic alone (its
verdict accepted without review). `example_weight` turns a source and, for the critic, its
calibrated confidence into the `weight` of a `PreferencePair` or `PointwiseExample`; training
uses it when `TrainConfig.weight_examples` is on.
"""

from __future__ import annotations

from collections.abc import Mapping

LABEL_SOURCES: tuple[str, ...] = ("expert_consensus", "adjudicated", "single_expert", "critic")
SOURCE_LABELS = {
    "expert_consensus": "Expert consensus",
    "adjudicated": "Adjudicated",
    "single_expert": "Single expert",
    "critic": "Critic alone",
}
# Defaults, not measurements: an unreviewed critic label counts at most half as much as an
# expert's, and then only as much as the critic is sure of it. A project can pass its own table,
# for instance from its audited agreement rates.
DEFAULT_SOURCE_WEIGHTS: Mapping[str, float] = {
    "expert_consensus": 1.0,
    "adjudicated": 1.0,
    "single_expert": 0.8,
    "critic": 0.5,
}


def example_weight(
    source: str,
    confidence: float | None = None,
    source_weights: Mapping[str, float] = DEFAULT_SOURCE_WEIGHTS,
) -> float:
    """The weight of an example labelled by `source`: the source's weight times the confidence.

    `confidence` is the probability that the label is right (the critic's calibrated confidence;
    None for a human label, which counts as sure). Raises ValueError for an unknown source or a
    confidence outside [0, 1].
    """
    if source not in source_weights:
        raise ValueError(f"Unknown label source {source!r}; expected one of {tuple(source_weights)}")
    if confidence is None:
        return float(source_weights[source])
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"A confidence is a probability in [0, 1], got {confidence}")
    return float(source_weights[source]) * float(confidence)
