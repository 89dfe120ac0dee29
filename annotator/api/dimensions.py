"""The critic's and the experts' harmlessness / helpfulness / honesty scores (0-4 each) in the
API: one serializer per shape, built from alignment_core.dimensions.DIMENSIONS."""

from __future__ import annotations

from rest_framework import serializers

from alignment_core.dimensions import DIMENSIONS


def _scores_serializer(name: str, *, reasons: bool) -> type[serializers.Serializer]:
    """{dimension: 0-4} (alignment_core.dimensions.DIMENSIONS), then their reasons if asked."""
    fields = {dim: serializers.IntegerField(min_value=0, max_value=4) for dim in DIMENSIONS}
    if reasons:  # created last: DRF orders declared fields by creation
        fields["reasons"] = serializers.DictField(child=serializers.CharField())
    return type(name, (serializers.Serializer,), fields)

ScoresOutput = _scores_serializer("DimensionScoresOutput", reasons=False)
DimensionsOutput = _scores_serializer("DimensionsOutput", reasons=True)


def scores_data(values: dict | None) -> dict | None:
    return {name: int(values[name]) for name in DIMENSIONS} if values else None
