"""The vendored, human-labelled critic data (see data/critic/PROVENANCE.md) as plain rows.

Splits are fixed in the files: "pretrain" trains the shipped critic and its calibration,
"finetune" is the pool the benchmark draws its 200 expert labels from, and "eval" is never
trained on. One request always sits in one split.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from alignment_core.critic.base import CritiqueInput

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "critic"
SPLITS = ("pretrain", "finetune", "eval")


@dataclass
class LabelledAnswer:
    """One (request, answer) pair with the human labels its source carries."""

    request: str
    response: str
    source: str
    file: str
    request_harmful: bool | None
    refused: bool | None
    refused_by: str  # "human" or "rule" (see PROVENANCE.md)
    harmful_content: bool | None
    harm_score: float | None
    verdict: str | None  # the four-way label, None where a needed part is unknown
    group: str
    split: str

    def as_input(self) -> CritiqueInput:
        """What the critic sees: the text only, no labels and no attacker metadata."""
        return CritiqueInput(query=self.request, response=self.response)


@dataclass
class LabelledRequest:
    request: str
    harmful: bool
    source: str
    group: str
    split: str


def _read(name: str) -> list[dict]:
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_answers(split: str | None = None) -> list[LabelledAnswer]:
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}")
    rows = [LabelledAnswer(**row) for row in _read("responses.jsonl.gz")]
    return [r for r in rows if split is None or r.split == split]


def load_requests(split: str | None = None) -> list[LabelledRequest]:
    rows = [LabelledRequest(**row) for row in _read("requests.jsonl.gz")]
    return [r for r in rows if split is None or r.split == split]


def four_way_examples(split: str) -> list[tuple[CritiqueInput, str]]:
    """(critic input, human four-way verdict) for the split's fully labelled answers."""
    return [(row.as_input(), row.verdict) for row in load_answers(split) if row.verdict]
