"""Writes for exports: validate a request, run it as a background job, stream rows to a file.

Every format is written incrementally to a temporary file next to its destination and moved into
place with os.replace, so a reader never sees half a file and memory stays flat however many
rows there are. The same `export_to_path` serves the background job, `manage.py export` and
benchmarks/export.py.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import FileResponse

from alignment_core.dimensions import DIMENSIONS
from annotator.export_filters import export_filters_clean
from annotator.models import DatasetSnapshot, Export, JobStatus, Project, SnapshotExample
from annotator.selectors import exports as rows_from
from annotator.services.jobs import (
    JobCancelled,
    job_enqueue,
    job_finish,
    job_progress,
    job_start,
)

try:  # orjson is pinned in requirements.txt; the fallback keeps the module importable.
    import orjson

    _OPTIONS = orjson.OPT_APPEND_NEWLINE

    def _json_line(row: dict) -> bytes:
        return orjson.dumps(row, option=_OPTIONS)
except ImportError:  # pragma: no cover
    import json

    def _json_line(row: dict) -> bytes:
        return (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")

Format = Export.Format
EXTENSIONS = {Format.TRL_PREFERENCE: "jsonl", Format.TRL_CONVERSATIONAL: "jsonl",
              Format.SFT_CHAT: "jsonl", Format.KTO: "jsonl", Format.CSV: "csv",
              Format.PARQUET: "parquet"}
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv",
                 "parquet": "application/vnd.apache.parquet"}
PARQUET_BATCH = 10_000
TICK_EVERY = 5000  # rows between progress reports (each one a heartbeat and a cancel check)
ProgressFn = Callable[[int, int], None]


# -- rows in each format ----------------------------------------------------------------------


def _provenance_columns(snapshot: DatasetSnapshot | None) -> tuple[str, ...]:
    return rows_from.PROVENANCE_COLUMNS + (rows_from.SNAPSHOT_COLUMNS if snapshot else ())


def _source_rows(*, project: Project, fmt: str, filters: dict,
                 snapshot: DatasetSnapshot | None) -> tuple[Iterator[dict], int]:
    """The source rows for a format and their (approximate) count, for progress."""
    selection = rows_from.SELECTION[fmt]
    if snapshot is None:
        items = rows_from.curated_items(project=project, filters=filters, selection=selection)
        rows = rows_from.item_rows(items=items, min_agreement=filters.get("min_agreement"))
        return rows, items.count()
    kinds = {"pairs": [SnapshotExample.Kind.PAIR], "sft": [SnapshotExample.Kind.SFT],
             "kto": [SnapshotExample.Kind.SFT, SnapshotExample.Kind.PAIR]}[selection]
    querysets = [rows_from.snapshot_examples(snapshot=snapshot, filters=filters, kind=kind)
                 for kind in kinds]

    def chained() -> Iterator[dict]:
        for kind, examples in zip(kinds, querysets):
            for row in rows_from.example_rows(examples=examples):
                row["kind"] = kind
                yield row

    return chained(), sum(q.count() for q in querysets)


def _records(rows: Iterator[dict], fmt: str, provenance: tuple[str, ...]) -> Iterator[dict]:
    """Turn source rows into the records of one JSON format (TRL's exact column names)."""
    full = bool(provenance)
    for row in rows:
        if fmt == Format.TRL_PREFERENCE:
            # The source row is already prompt, chosen, rejected, provenance (in that order):
            # reuse it rather than copy a million dicts.
            if full:
                del row["prompt_messages"]
                row.pop("kind", None)
                yield row
            else:
                yield {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
            continue
        extra = {key: row[key] for key in provenance}
        if fmt == Format.TRL_CONVERSATIONAL:
            yield {"prompt": row["prompt_messages"] or [{"role": "user", "content": row["prompt"]}],
                   "chosen": [{"role": "assistant", "content": row["chosen"]}],
                   "rejected": [{"role": "assistant", "content": row["rejected"]}], **extra}
        elif fmt == Format.SFT_CHAT:
            messages = row["prompt_messages"] or [{"role": "user", "content": row["prompt"]}]
            yield {"messages": [*messages, {"role": "assistant", "content": row["chosen"]}],
                   **extra}
        elif fmt == Format.KTO:
            # Desirable: every curated answer. Undesirable: the learner's original wherever the
            # experts replaced it. A snapshot keeps the two as SFT and pair examples.
            kind = row.get("kind")
            if kind != SnapshotExample.Kind.PAIR:
                yield {"prompt": row["prompt"], "completion": row["chosen"], "label": True, **extra}
            differs = row["rejected"] and row["rejected"] != row["chosen"]
            if kind != SnapshotExample.Kind.SFT and differs:
                yield {"prompt": row["prompt"], "completion": row["rejected"], "label": False,
                       **extra}


def _parquet_schema(provenance: tuple[str, ...]) -> pa.Schema:
    types = {"item_id": pa.int64(), "review_ids": pa.list_(pa.int64()),
             "expert_ids": pa.list_(pa.string()), "agreement": pa.float64(),
             "adjudicated": pa.bool_(), "curated_at": pa.timestamp("us", tz="UTC"),
             "created_at": pa.timestamp("us", tz="UTC"), "snapshot_id": pa.int64(),
             "example_id": pa.int64(), "label_confidence": pa.float64(),
             "is_response_safe": pa.bool_(), **{name: pa.int64() for name in DIMENSIONS}}
    columns = ("prompt", "chosen", "rejected", *provenance)
    return pa.schema([(name, types.get(name, pa.string())) for name in columns])


def _write_jsonl(handle, rows, fmt, provenance, tick) -> int:
    count = 0
    write = handle.write
    for record in _records(rows, fmt, provenance):
        write(_json_line(record))
        count += 1
        if not count % TICK_EVERY:
            tick(count)
    return count


def _write_csv(handle, rows, provenance, tick) -> int:
    import io

    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(["prompt", "chosen", "rejected", *provenance])
    count = 0
    for row in rows:
        values = [row["prompt"], row["chosen"], row["rejected"]]
        for key in provenance:
            value = row[key]
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            elif value is None:
                value = ""
            values.append(value)
        writer.writerow(values)
        count += 1
        if not count % TICK_EVERY:
            tick(count)
    text.flush()
    text.detach()
    return count


def _write_parquet(handle, rows, provenance, tick) -> int:
    """Parquet in row groups of PARQUET_BATCH rows: only one batch is ever held in memory.

    Timestamps arrive as ISO strings; each batch is built with string columns and cast once.
    """
    schema = _parquet_schema(provenance)
    as_text = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_timestamp(f.type) else f
                         for f in schema])
    count = 0
    with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            count += 1
            if not count % TICK_EVERY:
                tick(count)
            if len(batch) >= PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=as_text).cast(schema))
                batch = []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=as_text).cast(schema))
    return count


def export_to_path(*, project: Project, fmt: str, path: Path, filters: dict | None = None,
                   snapshot: DatasetSnapshot | None = None, include_provenance: bool = True,
                   progress: ProgressFn | None = None) -> int:
    """Write a project's (or snapshot's) curated data in `fmt` to `path`; return the row count.

    The file appears atomically: rows go to a hidden `.<name>.tmp` beside it, then os.replace
    moves it into place.
    `progress(done, total)` is called every TICK_EVERY rows (a job's heartbeat and cancel
    point); `total` counts source rows, so KTO's two rows per item may run past it.
    """
    if fmt not in Format.values:
        raise ValidationError({"format": [(f"Unknown format {fmt!r}; use one of "
                                           f"{', '.join(Format.values)}.")]})
    filters = export_filters_clean(filters=filters, project=project, snapshot=snapshot)
    rows, total = _source_rows(project=project, fmt=fmt, filters=filters, snapshot=snapshot)
    provenance = _provenance_columns(snapshot) if include_provenance else ()

    def tick(done: int) -> None:
        if progress is not None:
            progress(done, total)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb", buffering=1 << 20) as handle:
            if fmt == Format.CSV:
                count = _write_csv(handle, rows, provenance, tick)
            elif fmt == Format.PARQUET:
                count = _write_parquet(handle, rows, provenance, tick)
            else:
                count = _write_jsonl(handle, rows, fmt, provenance, tick)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if progress is not None:
        progress(count, max(total, count))
    return count


# -- the export job ---------------------------------------------------------------------------


def export_relative_path(*, export: Export) -> str:
    return f"exports/{export.project.slug}/export-{export.pk}-{export.format}.{EXTENSIONS[export.format]}"


@transaction.atomic
def export_create(*, project: Project, user, format: str, filters: dict | None = None,
                  include_provenance: bool = True,
                  snapshot: DatasetSnapshot | None = None) -> Export:
    """Validate an export request and queue it as a background job (enqueued on commit)."""
    if snapshot is not None and snapshot.project_id != project.pk:
        raise ValidationError({"snapshot": ["This snapshot belongs to another project."]})
    clean = export_filters_clean(filters=filters, project=project, snapshot=snapshot)
    export = Export(project=project, created_by=user if user and user.is_authenticated else None,
                    format=format, filters=clean, include_provenance=include_provenance,
                    snapshot=snapshot)
    export.full_clean()
    export.save()
    job_enqueue(job=export)
    return export


def export_file_ready(*, export: Export) -> Path | None:
    """The finished export's file, or None while it is not (or no longer) downloadable."""
    if export.status != JobStatus.SUCCEEDED or not export.file_path:
        return None
    path = export.file()
    return path if path.is_file() else None


def export_file_response(export: Export) -> FileResponse | None:
    """The export's file as an attachment, or None while it is not ready (the page and the API
    each say so their own way)."""
    path = export_file_ready(export=export)
    if path is None:
        return None
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name,
                        content_type=CONTENT_TYPES[EXTENSIONS[export.format]])


def export_execute(*, export: Export) -> None:
    """Write the export's file in this process (the task calls this). One stage, idempotent: a
    resumed export rewrites it from scratch into a temporary file, so a crash never leaves a
    partial file in place."""
    job_start(job=export, stage="write")
    try:
        relative = export_relative_path(export=export)
        rows = export_to_path(
            project=export.project, fmt=export.format, path=settings.DATA_DIR / relative,
            filters=export.filters, snapshot=export.snapshot,
            include_provenance=export.include_provenance,
            progress=lambda done, total: job_progress(job=export, stage="write", done=done,
                                                      total=total))
    except JobCancelled:
        job_finish(job=export, status=JobStatus.CANCELLED)
        return
    except Exception as error:
        job_finish(job=export, status=JobStatus.FAILED, error=str(error))
        raise
    Export.objects.filter(pk=export.pk).update(file_path=relative, rows=rows)
    export.file_path, export.rows = relative, rows
    job_finish(job=export, status=JobStatus.SUCCEEDED)
