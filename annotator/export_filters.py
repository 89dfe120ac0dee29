"""The export filters, declared once.

Each `ExportFilter` says what the filter narrows (an ORM lookup on review items for live exports,
on snapshot examples for snapshot exports, or neither when the reader applies it itself), what
kind of value it takes, and how it is labelled. The service's validation
(`export_filters_clean`), the selector that applies them, the page's form, the API serializer and
`manage.py export` all read this tuple. To add a filter, append one `ExportFilter` here (with an
`item_lookup` and/or `example_lookup`) and a test; a filter that needs more than a lookup also
gets its few lines where the rows are read (annotator/selectors/exports.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from annotator.models import Project, SnapshotExample, Verdict

# The kinds of value a filter takes; each has one rule in `_clean_value` and one form and one
# serializer field (annotator/views/data.py, annotator/api/data.py).
KINDS = ("campaign", "text", "choice", "fraction", "flag")


@dataclass(frozen=True)
class ExportFilter:
    key: str
    kind: str
    label: str = ""
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for kind "choice"
    empty_label: str = ""  # what no choice means, e.g. "any"
    item_lookup: str = ""  # ReviewItem lookup that live exports filter on ("" : see docstring)
    example_lookup: str = ""  # SnapshotExample lookup; "" means it cannot narrow a snapshot
    live: bool = True  # False: only for snapshot exports

    @property
    def values(self) -> list[str]:
        return [value for value, _ in self.choices]


EXPORT_FILTERS: tuple[ExportFilter, ...] = (
    ExportFilter("campaign_id", "campaign", label="Campaign",
                 item_lookup="critique__response__attack__campaign_id"),
    ExportFilter("category", "text", item_lookup="critique__response__attack__category",
                 example_lookup="category"),
    ExportFilter("strategy", "text", item_lookup="critique__response__attack__strategy",
                 example_lookup="strategy"),
    ExportFilter("verdict", "choice", choices=tuple(Verdict.choices), empty_label="any",
                 item_lookup="final_verdict"),
    # Share of an item's expert decisions that agree with its final verdict; read with the
    # reviews, so the selector applies it row by row. 0 restricts nothing (as for snapshots).
    ExportFilter("min_agreement", "fraction"),
    ExportFilter("adjudicated_only", "flag", item_lookup="adjudicated"),
    # Held-out campaigns are left out unless this is set (see selectors.exports.curated_items).
    ExportFilter("include_held_out", "flag"),
    ExportFilter("split", "choice", choices=tuple(SnapshotExample.Split.choices),
                 empty_label="both", help="Snapshot exports only.", example_lookup="split",
                 live=False),
)
FILTER_KEYS = tuple(f.key for f in EXPORT_FILTERS)
_BY_KEY = {f.key: f for f in EXPORT_FILTERS}


def _refuse(message: str) -> ValidationError:
    return ValidationError({"filters": [message]})


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    raise _refuse(f"{key} must be true or false, not {value!r}.")


def _clean_value(spec: ExportFilter, value: Any, project: Project) -> Any:
    """The normalised value, or None when it restricts nothing; ValidationError when bad."""
    if spec.kind == "flag":
        return True if _as_bool(spec.key, value) else None
    if value in (None, ""):
        return None
    if spec.kind == "text":
        return str(value)
    if spec.kind == "choice":
        if value not in spec.values:
            joined = " or ".join(spec.values) if len(spec.values) == 2 else \
                "one of " + ", ".join(spec.values)
            raise _refuse(f"{spec.key} must be {joined}.")
        return value
    if spec.kind == "campaign":
        try:
            campaign_id = int(value)
        except (TypeError, ValueError):
            raise _refuse(f"{spec.key} must be a campaign id.") from None
        if not project.campaigns.filter(pk=campaign_id).exists():
            raise _refuse(f"This project has no campaign {campaign_id}.")
        return campaign_id
    if spec.kind == "fraction":
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1.0
        if not 0.0 <= number <= 1.0:
            raise _refuse(f"{spec.key} must be a number from 0 to 1.")
        return number if number > 0 else None
    raise ValueError(f"Unknown filter kind {spec.kind!r}")


def export_filters_clean(*, filters: Mapping[str, Any] | None, project: Project,
                         snapshot: Any = None) -> dict[str, Any]:
    """Check and normalise export filters; raise ValidationError naming the bad filter.

    Only filters that restrict something are kept, so the stored dict reads as what was asked.
    """
    filters = dict(filters or {})
    if "campaign" in filters and "campaign_id" not in filters:  # the obvious spelling works too
        filters["campaign_id"] = filters.pop("campaign")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise _refuse(f"Unknown filter(s) {', '.join(unknown)}; the filters are "
                      f"{', '.join(FILTER_KEYS)}.")
    clean = {}
    for spec in EXPORT_FILTERS:
        if spec.key in filters:
            value = _clean_value(spec, filters[spec.key], project)
            if value is not None:
                clean[spec.key] = value
    if snapshot is not None:
        # A snapshot is already a frozen selection; only its own columns can narrow it.
        live_only = [key for key in clean if not _BY_KEY[key].example_lookup]
        if live_only:
            usable = [f.key for f in EXPORT_FILTERS if f.example_lookup]
            raise _refuse(f"{', '.join(live_only)} cannot filter a snapshot export; use "
                          f"{', '.join(usable[:-1])} or {usable[-1]}.")
    else:
        snapshot_only = [key for key in clean if not _BY_KEY[key].live]
        if snapshot_only:
            raise _refuse(f"{', '.join(snapshot_only)} applies to snapshot exports only.")
    return clean
