"""Reference log-probs that outlive a run, so that a pair is scored by the base model only once.

DPO compares the policy with a reference, and for a fresh adapter the reference is the base
model, which never changes. The human-in-the-loop cycle retrains on cumulative snapshots (last
round's pairs plus the new ones) and often on the same snapshot with other settings; without a
cache every run scores every pair with the base model again, a forward pass over the whole
dataset. With one, a run scores only the pairs it has not seen.

An entry is keyed by the base model's files, the precision and device type of the forward, and
the exact token ids of the pair, so a changed model, template or truncation never reuses a
stale score. The store is one SQLite file (WAL): safe for several workers at once, and small
(about 150 bytes a pair). Only base-model scores go in; after SFT the reference is the SFT
model of that run, which no other run shares.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .data import EncodedPair

SCHEMA = """
CREATE TABLE IF NOT EXISTS reference_logps (
    key TEXT PRIMARY KEY,
    chosen REAL NOT NULL,
    rejected REAL NOT NULL
)
"""


def model_key(model_dir: Path | str, precision: str, device_type: str) -> str:
    """What the base model's scores depend on: its config, its weight files, how it runs.

    Weight files count by name, size and modification time (hashing 500 MB on every run would
    cost seconds); a model directory that is rewritten in place gets new entries.
    """
    model_dir = Path(model_dir).resolve()
    files = sorted(
        (path.name, path.stat().st_size, path.stat().st_mtime_ns)
        for pattern in ("*.safetensors", "*.bin")
        for path in model_dir.glob(pattern)
    )
    config = (model_dir / "config.json").read_text(encoding="utf-8")
    blob = json.dumps(
        {"dir": str(model_dir), "config": config, "files": files, "precision": precision,
         "device": device_type},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


BUSY_SECONDS = 30.0


def _while_locked(statement: Callable[[], object]) -> None:
    """Run `statement`, again while another connection holds the file's lock (up to
    BUSY_SECONDS). Switching to WAL takes an exclusive lock and SQLite fails it at once, without
    its busy timeout, when another process is opening the file: the processes of one
    multi-process training run all open the cache together."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class ReferenceCache:
    """Summed base-model log-probs of (chosen, rejected) per pair, in one SQLite file."""

    def __init__(self, path: Path | str, model: str) -> None:
        self.path = Path(path)
        self.model = model
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        _while_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
        _while_locked(lambda: self._db.execute(SCHEMA))

    def close(self) -> None:
        self._db.close()

    def key(self, pair: EncodedPair) -> str:
        blob = json.dumps([self.model, pair.prompt_ids, pair.chosen_ids, pair.rejected_ids])
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, pairs: Sequence[EncodedPair]) -> dict[int, tuple[float, float]]:
        """The cached (chosen, rejected) of each pair that has one, by index into `pairs`."""
        keys = [self.key(pair) for pair in pairs]
        found: dict[str, tuple[float, float]] = {}
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                "SELECT key, chosen, rejected FROM reference_logps WHERE key IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((key, (chosen, rejected)) for key, chosen, rejected in rows)
        return {i: found[key] for i, key in enumerate(keys) if key in found}

    def put(self, pairs: Sequence[EncodedPair], scores: Sequence[Sequence[float]]) -> None:
        """Store the (chosen, rejected) of each pair; one transaction."""
        rows = [
            (self.key(pair), float(chosen), float(rejected))
            for pair, (chosen, rejected) in zip(pairs, scores, strict=True)
        ]
        with self._db:  # BEGIN ... COMMIT
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO reference_logps (key, chosen, rejected) VALUES (?, ?, ?)",
                rows,
            )
