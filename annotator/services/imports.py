"""Imports: prompts, prompt/response pairs and HH-RLHF transcripts, all or nothing.

The whole file is read, decoded and validated before anything is written; every problem names
its line and field. Only a completely valid file is written, in one transaction.

What each kind becomes:

- prompts (JSONL with "prompt", CSV with a "prompt" column, or plain text, one per line): a
  Campaign named "Import <file>" (strategies ["import"]) with one AttackQuery (source "import")
  per prompt. Its job answers them with the active learner, critiques and queues review items.
- pairs (JSONL/CSV with "prompt" and "response"): the same Campaign, plus each response as a
  Response with no learner version (it was not written by our learner). Its job skips answering
  and critiques the given responses, then queues review items.
- hh (JSONL with Anthropic HH-RLHF "chosen"/"rejected" transcripts made of "\\n\\nHuman: …" and
  "\\n\\nAssistant: …" turns): these are labels already, so they are stored as curated items at
  once, in a finished Campaign (no job): the last Human turn is the AttackQuery's text (a
  multi-turn transcript's whole chat up to it goes to its `turns`), the rejected transcript's last Assistant turn is the Response, a Critique by
  critic "import" (version "hh-rlhf", confidence 1) says "unsafe" with the chosen answer as its
  suggested revision (or "safe" when both answers are the same), and a ReviewItem in state DONE
  carries the chosen answer as `final_response`. Exports then yield chosen/rejected exactly.

Optional columns/fields for prompts and pairs: "category" and "system_prompt".
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alignment_core.dimensions import DIMENSIONS
from annotator.models import (
    AttackQuery,
    Campaign,
    Critique,
    ItemState,
    JobStatus,
    LearnerVersion,
    Project,
    Response,
    ReviewItem,
    Verdict,
)

IMPORT_KINDS = {"prompts": "Prompts", "pairs": "Prompt/response pairs",
                "hh": "HH-RLHF transcripts (chosen/rejected)"}
FORMATS = {"prompts": ("jsonl", "csv", "txt"), "pairs": ("jsonl", "csv"), "hh": ("jsonl",)}
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
              ".txt": "txt"}
REQUIRED = {"prompts": ("prompt",), "pairs": ("prompt", "response"), "hh": ("chosen", "rejected")}
OPTIONAL = {"prompts": ("category", "system_prompt"), "pairs": ("category", "system_prompt"),
            "hh": ()}
MAX_TEXT = 100_000  # characters per field
MAX_PROBLEMS = 20  # reported at once; enough to fix a file without drowning the page
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


class ImportFileError(ValidationError):
    """The file cannot be imported; `problems` are messages naming the line and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__({"file": problems})


@dataclass(frozen=True)
class ImportResult:
    kind: str
    rows: int
    campaign: int | None  # the Campaign's id
    items: int  # curated items created (hh)


@dataclass
class _Row:
    line: int
    values: dict[str, Any]


# -- reading ------------------------------------------------------------------------------------


def _read_limited(stream: IO[bytes] | bytes) -> bytes:
    limit = settings.IMPORT_MAX_BYTES
    size = getattr(stream, "size", None)
    data = stream if isinstance(stream, bytes) else None
    if data is None and (size is None or size <= limit):
        data = stream.read(limit + 1)
    if data is None or len(data) > limit:
        shown = size if size is not None else len(data or b"")
        raise ImportFileError([(f"The file is {shown:,} bytes; the limit is {limit:,} bytes "
                                "(IMPORT_MAX_BYTES). Split it into smaller files.")])
    return data


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ImportFileError([(f"Line {line}: not valid UTF-8 (byte {column} of the line, byte "
                                f"offset {error.start} in the file: 0x{data[error.start]:02x}). "
                                "Save the file as UTF-8 and upload it again.")]) from None
    return text.removeprefix("\ufeff")


def _too_many(count: int) -> ImportFileError:
    return ImportFileError([(f"The file has more than {settings.IMPORT_MAX_ROWS:,} rows "
                             "(IMPORT_MAX_ROWS). Split it into smaller files.")])


def _parse_jsonl(text: str, problems: list[str]) -> list[_Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"Line {number}: not valid JSON ({error.msg} at column {error.colno}).")
            continue
        if not isinstance(value, dict):
            problems.append(f"Line {number}: expected a JSON object, found {type(value).__name__}.")
            continue
        rows.append(_Row(number, value))
        if len(rows) > settings.IMPORT_MAX_ROWS:
            raise _too_many(len(rows))
    return rows


def _parse_csv(text: str, kind: str, problems: list[str]) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    found = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED[kind] if name not in found]
    if missing:
        expected = ", ".join(REQUIRED[kind] + OPTIONAL[kind])
        raise ImportFileError([(f"Line 1: the CSV header lacks the column(s) {', '.join(missing)}. "
                                f"Expected columns: {expected} (the last ones optional); found: "
                                f"{', '.join(found) or 'no header'}.")])
    reader.fieldnames = found
    rows = []
    try:
        for record in reader:
            if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
                continue
            if None in record:
                problems.append(f"Line {reader.line_num}: more fields than the header has columns.")
                continue
            rows.append(_Row(reader.line_num, record))
            if len(rows) > settings.IMPORT_MAX_ROWS:
                raise _too_many(len(rows))
    except csv.Error as error:
        problems.append(f"Line {reader.line_num}: malformed CSV ({error}).")
    return rows


def _parse_txt(text: str) -> list[_Row]:
    rows = [_Row(number, {"prompt": line.strip()})
            for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(rows) > settings.IMPORT_MAX_ROWS:
        raise _too_many(len(rows))
    return rows


# -- validating -----------------------------------------------------------------------------------


def _text_field(row: _Row, field: str, problems: list[str], required: bool = True) -> str:
    value = row.values.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(f"Line {row.line}: field \"{field}\" is missing or empty.")
        return ""
    if not isinstance(value, str):
        problems.append(f"Line {row.line}: field \"{field}\" must be a string, "
                        f"not {type(value).__name__}.")
        return ""
    if len(value) > MAX_TEXT:
        problems.append(f"Line {row.line}: field \"{field}\" is {len(value):,} characters; "
                        f"the limit is {MAX_TEXT:,}.")
        return ""
    return value.strip()


def _parse_hh(transcript: str) -> list[tuple[str, str]]:
    """Split an HH-RLHF transcript into (role, text) turns; raise ValueError when malformed."""
    if not transcript.startswith("\n\n"):
        transcript = "\n\n" + transcript.lstrip("\n")
    parts = _HH_TURN.split(transcript)
    if parts[0].strip():
        raise ValueError("text before the first \"Human:\" turn")
    turns = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]
    if not turns:
        raise ValueError("no \"\\n\\nHuman:\" / \"\\n\\nAssistant:\" turns")
    for index, (role, _) in enumerate(turns):
        expected = "Human" if index % 2 == 0 else "Assistant"
        if role != expected:
            raise ValueError(f"turn {index + 1} is {role}, expected {expected} (turns alternate, "
                             "starting with Human)")
    if turns[-1][0] != "Assistant":
        raise ValueError("the last turn must be an Assistant turn")
    if not turns[-1][1] or not turns[-2][1]:
        raise ValueError("the last Human or Assistant turn is empty")
    return turns


def _validate(kind: str, rows: list[_Row], problems: list[str]) -> list[dict]:
    clean = []
    for row in rows:
        if len(problems) >= MAX_PROBLEMS:
            break
        if kind in ("prompts", "pairs"):
            item = {"prompt": _text_field(row, "prompt", problems),
                    "category": _text_field(row, "category", problems, required=False),
                    "system_prompt": _text_field(row, "system_prompt", problems, required=False)}
            if len(item["category"]) > 64:
                problems.append(f"Line {row.line}: field \"category\" is longer than 64 characters.")
            if kind == "pairs":
                item["response"] = _text_field(row, "response", problems)
            clean.append(item)
            continue
        chosen, rejected = [], []
        for field, out in (("chosen", chosen), ("rejected", rejected)):
            value = row.values.get(field)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"Line {row.line}: field \"{field}\" must be a non-empty "
                                "transcript string.")
                continue
            try:
                out.extend(_parse_hh(value))
            except ValueError as error:
                problems.append(f"Line {row.line}: field \"{field}\" is not an HH-RLHF "
                                f"transcript: {error}.")
        if chosen and rejected:
            if chosen[:-1] != rejected[:-1]:
                problems.append(f"Line {row.line}: fields \"chosen\" and \"rejected\" differ "
                                "before their last Assistant turn (they must share the prompt).")
                continue
            # `turns` holds a multi-turn attack's whole chat, ending with the user turn `text`
            # (as alignment_core's attacks do); a one-turn prompt needs none.
            history = [{"role": "user" if role == "Human" else "assistant", "content": text}
                       for role, text in chosen[:-1]]
            clean.append({"prompt": chosen[-2][1], "turns": history if len(history) > 1 else None,
                          "chosen": chosen[-1][1], "rejected": rejected[-1][1]})
    return clean


# -- writing --------------------------------------------------------------------------------------


def _campaign(*, project: Project, user, filename: str, count: int, finished: bool) -> Campaign:
    learner = LearnerVersion.objects.filter(project=project,
                                            status=LearnerVersion.Status.ACTIVE).first()
    if learner is None:
        raise ValidationError({"project": ["The project has no active learner version."]})
    now = timezone.now()
    campaign = Campaign(project=project, learner_version=learner,
                        name=f"Import {filename}"[:120], strategies=["import"],
                        created_by=user if user is not None and user.is_authenticated else None,
                        budget=max(count, 1), report={"imported_rows": count})
    if finished:
        campaign.status, campaign.started_at, campaign.finished_at = JobStatus.SUCCEEDED, now, now
    campaign.full_clean()
    campaign.save()
    return campaign


def _write(*, project: Project, user, kind: str, filename: str, rows: list[dict]) -> ImportResult:
    from annotator.services.campaigns import campaign_enqueue_existing

    campaign = _campaign(project=project, user=user, filename=filename, count=len(rows),
                         finished=kind == "hh")
    attacks = AttackQuery.objects.bulk_create([
        # Nobody knows whether an imported prompt is harmful: the critic judges it from its
        # text (is_benign None), never from a default.
        AttackQuery(project=project, campaign=campaign, seq=seq, text=row["prompt"],
                    strategy="import", category=row.get("category", ""), is_benign=None,
                    system_prompt=row.get("system_prompt", ""), turns=row.get("turns"),
                    source="import", meta={"file": filename})
        for seq, row in enumerate(rows)], batch_size=1000)
    if kind == "prompts":
        campaign_enqueue_existing(campaign=campaign)
        return ImportResult(kind=kind, rows=len(rows), campaign=campaign.pk, items=0)
    text_key = "response" if kind == "pairs" else "rejected"
    responses = Response.objects.bulk_create([
        Response(attack=attack, learner_version=None, text=row[text_key])
        for attack, row in zip(attacks, rows)], batch_size=1000)
    if kind == "pairs":
        campaign_enqueue_existing(campaign=campaign)
        return ImportResult(kind=kind, rows=len(rows), campaign=campaign.pk, items=0)
    now = timezone.now()
    critiques = [
        Critique(response=response, critic_name="import", critic_version="hh-rlhf",
                 verdict=Verdict.SAFE if row["chosen"] == row["rejected"] else Verdict.UNSAFE,
                 confidence=1.0, severity=0, suggested_revision=row["chosen"],
                 explanation="Imported HH-RLHF label: the chosen answer is preferred to this one.")
        for response, row in zip(responses, rows)]
    for critique in critiques:  # the dimensions scorer's reading of the imported label
        critique.dimensions = critique.scores
    critiques = Critique.objects.bulk_create(critiques, batch_size=1000)
    items = ReviewItem.objects.bulk_create([
        ReviewItem(project=project, critique=critique, state=ItemState.DONE,
                   final_verdict=critique.verdict, final_response=row["chosen"], curated_at=now,
                   final_dimensions={name: critique.scores[name] for name in DIMENSIONS},
                   reviews_required=1)
        for critique, row in zip(critiques, rows)], batch_size=1000)
    return ImportResult(kind=kind, rows=len(rows), campaign=campaign.pk, items=len(items))


def import_file(*, project: Project, user, kind: str, filename: str,
                stream: IO[bytes] | bytes) -> ImportResult:
    """Validate a whole file, then write it in one transaction; raise ImportFileError naming
    every problem's line and field (at most MAX_PROBLEMS) and write nothing if any."""
    if kind not in IMPORT_KINDS:
        raise ValidationError({"kind": [(f"Unknown import kind {kind!r}; use one of "
                                         f"{', '.join(IMPORT_KINDS)}.")]})
    filename = PurePath(filename or "upload").name
    fmt = EXTENSIONS.get(PurePath(filename).suffix.lower())
    if fmt not in FORMATS[kind]:
        allowed = ", ".join(ext for ext, f in EXTENSIONS.items() if f in FORMATS[kind])
        raise ImportFileError([f"{filename}: a {kind} import takes files ending in {allowed}."])
    text = _decode(_read_limited(stream))
    problems: list[str] = []
    if fmt == "jsonl":
        raw = _parse_jsonl(text, problems)
    elif fmt == "csv":
        raw = _parse_csv(text, kind, problems)
    else:
        raw = _parse_txt(text)
    rows = _validate(kind, raw, problems)
    if problems:
        raise ImportFileError(problems[:MAX_PROBLEMS])
    if not rows:
        raise ImportFileError([f"{filename} has no rows to import."])
    with transaction.atomic():
        return _write(project=project, user=user, kind=kind, filename=filename, rows=rows)
