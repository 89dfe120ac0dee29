"""Derive human-labelled preference pairs from PyRIT's harm-scorer evaluation sets.

PyRIT (MIT licence) ships, in its PyPI wheel, CSV files of responses to harmful objectives, each
scored for harm by one or three human annotators (0 harmless .. 1 severe). Two responses to the
same objective whose mean human scores differ make a preference pair: the less harmful one is
preferred. This script turns the wheel's files into `pairs.jsonl` beside it:

    pip download --no-deps pyrit==1.1.0 -d /tmp/pyrit
    .venv/bin/python benchmarks/data/pyrit_harm_pairs/derive.py /tmp/pyrit/pyrit-1.1.0-py3-none-any.whl

Rules (also in PROVENANCE.md): every `pyrit/datasets/scorer_evals/harm/*.csv`; a row's score is the
mean of its `human_score_*` columns; rows with the same objective and the same response text are
merged (mean of their scores); every two responses to one objective whose scores differ by at
least MIN_GAP form a pair, and an objective keeps at most PER_OBJECTIVE pairs, largest gap first
(ties: the file order), so the few objectives with dozens of scored answers do not dominate.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import sys
import zipfile
from pathlib import Path

HARM_DIR = "pyrit/datasets/scorer_evals/harm/"
MIN_GAP = 0.25  # one step of the 0, 0.25, .., 1 scale: the annotators saw a difference
PER_OBJECTIVE = 4
OUT = Path(__file__).resolve().parent / "pairs.jsonl"


def read_rows(wheel: zipfile.ZipFile, name: str) -> list[dict]:
    text = wheel.read(name).decode("utf-8")
    lines = text.split("\n", 1)[1]  # the first line is a "# dataset_version=..." comment
    rows = []
    for row in csv.DictReader(io.StringIO(lines)):
        scores = [float(v) for k, v in row.items() if k and k.startswith("human_score") and v]
        rows.append({
            "objective": row["objective"].strip(),
            "response": row["assistant_response"].strip(),
            "category": row["harm_category"].strip(),
            "scores": scores,
        })
    return rows


def main(wheel_path: str) -> None:
    with zipfile.ZipFile(wheel_path) as wheel:
        names = sorted(n for n in wheel.namelist() if n.startswith(HARM_DIR) and n.endswith(".csv"))
        sources = {n: hashlib.sha256(wheel.read(n)).hexdigest() for n in names}
        # (objective, response) -> merged row, in file order
        merged: dict[tuple[str, str], dict] = {}
        for name in names:
            for row in read_rows(wheel, name):
                key = (row["objective"], row["response"])
                entry = merged.setdefault(key, {**row, "scores": [], "source": name.rsplit("/", 1)[1]})
                entry["scores"].extend(row["scores"])
    by_objective: dict[str, list[dict]] = {}
    for entry in merged.values():
        if entry["scores"] and entry["response"]:
            by_objective.setdefault(entry["objective"], []).append(entry)
    pairs = []
    for objective, entries in by_objective.items():
        candidates = []
        for a, b in itertools.combinations(entries, 2):
            harm_a, harm_b = (sum(e["scores"]) / len(e["scores"]) for e in (a, b))
            if abs(harm_a - harm_b) < MIN_GAP - 1e-9:
                continue
            chosen, rejected = (a, b) if harm_a < harm_b else (b, a)
            candidates.append((abs(harm_a - harm_b), chosen, rejected))
        candidates.sort(key=lambda c: -c[0])  # stable: ties keep the file order
        for _, chosen, rejected in candidates[:PER_OBJECTIVE]:
            pairs.append({
                "prompt": objective,
                "chosen": chosen["response"],
                "rejected": rejected["response"],
                "chosen_harm": round(sum(chosen["scores"]) / len(chosen["scores"]), 4),
                "rejected_harm": round(sum(rejected["scores"]) / len(rejected["scores"]), 4),
                "annotators": min(len(chosen["scores"]), len(rejected["scores"])),
                "category": chosen["category"],
                "source": chosen["source"],
            })
    with OUT.open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
    print(f"{len(pairs)} pairs from {len(by_objective)} objectives -> {OUT}")
    for name, digest in sources.items():
        print(f"sha256 {digest}  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
