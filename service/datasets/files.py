"""Parse uploaded JSONL / CSV files into records (errors name the line at fault)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from nmtune.service.datasets.schemas import Record
from nmtune.service.errors import ValidationFailed
from nmtune.service.json_types import Metadata


def _record(obj: object, where: str) -> Record:
    if not isinstance(obj, dict):
        raise ValidationFailed(f"file: {where}: expected a JSON object", field="file")
    try:
        return Record.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ValidationFailed(f"file: {where}: {loc}: {err['msg']}", field="file") from exc


def parse_jsonl(data: bytes) -> list[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("file: not UTF-8 text", field="file") from exc
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"file: line {n}: invalid JSON ({exc.msg})", field="file"
            ) from exc
        except ValueError as exc:  # e.g. an integer over Python's 4300-digit limit
            raise ValidationFailed(f"file: line {n}: invalid JSON ({exc})", field="file") from exc
        records.append(_record(obj, f"line {n}"))
    return records


def _int_label(raw: str, line: int) -> int:
    # at most 19 digits: a 64-bit label (and never Python's 4300-digit conversion limit)
    if len(raw.lstrip("-")) > 19:
        raise ValidationFailed(
            f"file: line {line}: label: integer labels must fit in 64 bits", field="file"
        )
    try:
        return int(raw)
    except ValueError as exc:
        raise ValidationFailed(
            f"file: line {line}: label: not an integer ({raw[:20]!r})", field="file"
        ) from exc


def parse_csv(data: bytes, label_kind: str | None = None) -> list[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("file: not UTF-8 text", field="file") from exc
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or [])
    if "label" not in cols or not ({"text", "image"} & cols):
        raise ValidationFailed(
            "file: CSV needs a header with `label` and `text` (or `image`) columns", field="file"
        )
    records = []
    try:
        for n, row in enumerate(reader, start=2):
            obj: dict[str, object] = {
                k: v for k, v in row.items() if k in Record.model_fields and v
            }
            raw = row.get("label") or ""
            as_int = label_kind == "int" or (label_kind is None and raw.lstrip("-").isdigit())
            obj["label"] = _int_label(raw, n) if as_int else raw
            if "split" not in obj:
                obj["split"] = "train"
            records.append(_record(obj, f"line {n}"))
    except csv.Error as exc:
        raise ValidationFailed(f"file: malformed CSV ({exc})", field="file") from exc
    return records


def parse_upload(filename: str | None, content_type: str | None, data: bytes) -> list[Record]:
    name = (filename or "").lower()
    if name.endswith(".csv") or (content_type or "").startswith("text/csv"):
        records = parse_csv(data)
    else:
        records = parse_jsonl(data)
    if not records:
        raise ValidationFailed("file: no records", field="file")
    return records


_METADATA = TypeAdapter(Metadata)


def parse_metadata_form(raw: str | None) -> dict[str, Any]:
    """The `metadata` form field of an upload: a JSON object, validated like DatasetCreate's."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"metadata: invalid JSON ({exc.msg})", field="metadata") from exc
    try:
        return dict(_METADATA.validate_python(value))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        where = f"metadata.{loc}" if loc else "metadata"
        raise ValidationFailed(f"{where}: {err['msg']}", field="metadata") from exc
