"""Datasets from precomputed vectors: parse JSON records, .npy and Parquet / Arrow files,
and check them as a whole before anything is written (each failure names its field)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from nmtune.service.datasets.schemas import SPLIT_PATTERN, VectorRecord
from nmtune.service.datasets.validation import (
    MAX_INT_LABEL,
    check_finite,
    check_name,
    check_text,
    summarize_labels,
)
from nmtune.service.errors import PayloadTooLarge, ValidationFailed
from nmtune.service.settings import Settings

Label = str | int
_SPLIT_RE = re.compile(SPLIT_PATTERN)


@dataclass
class CleanVectors:
    backbone: str
    backbone_identity: str
    label_kind: str
    x: np.ndarray  # (n, dim) float32, C-contiguous
    splits: list[str]
    labels: list[str]
    texts: list[str | None]
    counts: dict[str, dict[str, int]]
    classes: list[str]

    def keys(self) -> list[str]:
        """Per row: sha256 of its text when given, else of its vector's bytes."""
        row = 4 * int(self.x.shape[1])
        buf = np.ascontiguousarray(self.x).reshape(-1).view(np.uint8).data
        return [
            hashlib.sha256(
                t.encode("utf-8") if t is not None else buf[i * row : (i + 1) * row]
            ).hexdigest()
            for i, t in enumerate(self.texts)
        ]


@dataclass
class VectorTable:
    """What an upload carries before the checks: vectors plus one label / split / text each."""

    x: np.ndarray
    labels: list[Label]
    splits: list[str]
    texts: list[str | None]


def check_matrix(
    x: np.ndarray, settings: Settings, where: Callable[[int, int | None], str]
) -> np.ndarray:
    """A 2-D float matrix, every value finite in float32 -> float32 C-contiguous.

    ``where(i, j)`` names the field of row i (column j) for error messages.
    """
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValidationFailed(
            f"{where(0, None)}: expected a 2-D array (rows, dim), got shape {x.shape}",
            field=where(0, None),
        )
    if x.dtype.kind not in "fiu":
        raise ValidationFailed(
            f"{where(0, None)}: expected floating-point values, got dtype {x.dtype}",
            field=where(0, None),
        )
    n, dim = (int(v) for v in x.shape)
    if dim > settings.max_vector_dim:
        raise ValidationFailed(
            f"{where(0, None)}: dimension {dim}, at most {settings.max_vector_dim}",
            field=where(0, None),
        )
    if n > settings.max_vector_records:
        raise PayloadTooLarge(
            f"{where(0, None)}: {n} rows, at most {settings.max_vector_records} allowed",
            field=where(0, None),
        )
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(x, dtype=np.float32)  # beyond float32 -> inf: refused below
    check_finite(out, where)
    return out


def validate_table(
    table: VectorTable,
    backbone: str,
    backbone_identity: str,
    settings: Settings,
    vectors_field: str = "vectors",
) -> CleanVectors:
    """The checks of text datasets (splits, labels, classes) plus the vectors' own."""
    n = len(table.labels)
    if len(table.splits) != n or len(table.texts) != n:
        raise ValidationFailed("records: labels, splits and texts differ in count", field="records")
    if n == 0:
        raise ValidationFailed("records: no records", field="records")
    rows = int(table.x.shape[0]) if table.x.ndim >= 1 else 0
    if rows != n:
        raise ValidationFailed(
            f"{vectors_field}: {rows} vectors for {n} records; give one vector per record",
            field=vectors_field,
        )
    if n > settings.max_vector_records:
        raise PayloadTooLarge(
            f"records: {n} records, at most {settings.max_vector_records} allowed",
            field="records",
        )
    x = check_matrix(
        table.x,
        settings,
        lambda i, j: vectors_field if j is None else f"{vectors_field}[{i}][{j}]",
    )
    for split in dict.fromkeys(table.splits):
        if not isinstance(split, str) or not _SPLIT_RE.fullmatch(split):
            i = table.splits.index(split)
            raise ValidationFailed(
                f"records[{i}].split: unknown split {split!r}; use train, validation, test, "
                "ood:<name> or validation:ood:<name>",
                field=f"records[{i}].split",
            )
    first = table.labels[0]
    label_kind = "int" if isinstance(first, int) and not isinstance(first, bool) else "str"
    for i, lab in enumerate(table.labels):
        is_int = isinstance(lab, int) and not isinstance(lab, bool)
        if is_int != (label_kind == "int") or not (is_int or isinstance(lab, str)):
            raise ValidationFailed(
                f"records[{i}].label: labels must all be strings or all integers",
                field=f"records[{i}].label",
            )
    labels = [str(v) for v in table.labels]
    for lab in dict.fromkeys(labels):  # each distinct label once
        i = labels.index(lab)
        if label_kind == "int" and abs(int(lab)) > MAX_INT_LABEL:
            raise ValidationFailed(
                f"records[{i}].label: integer labels must fit in 64 bits",
                field=f"records[{i}].label",
            )
        if len(lab) > 200 or (label_kind == "str" and not lab.strip()):
            raise ValidationFailed(
                f"records[{i}].label: empty or longer than 200 characters",
                field=f"records[{i}].label",
            )
        check_name(lab, f"records[{i}].label")
    for i, t in enumerate(table.texts):
        if t is not None:
            check_text(t, f"records[{i}].text", settings.max_text_chars)
    counts, classes = summarize_labels(table.splits, labels, label_kind, settings)
    return CleanVectors(
        backbone=backbone,
        backbone_identity=backbone_identity,
        label_kind=label_kind,
        x=x,
        splits=list(table.splits),
        labels=labels,
        texts=list(table.texts),
        counts=counts,
        classes=classes,
    )


def table_from_records(records: Sequence[VectorRecord], settings: Settings) -> VectorTable:
    """JSON records -> a table; every row must have the first row's dimension."""
    if len(records) > settings.max_vector_records:
        raise PayloadTooLarge(
            f"records: {len(records)} records, at most {settings.max_vector_records} allowed",
            field="records",
        )
    dim = len(records[0].embedding)
    for i, r in enumerate(records):
        if len(r.embedding) != dim:
            raise ValidationFailed(
                f"records[{i}].embedding: dimension {len(r.embedding)}, records[0] has {dim}",
                field=f"records[{i}].embedding",
            )
    with np.errstate(over="ignore"):
        x = np.asarray([r.embedding for r in records], dtype=np.float32)
    check_finite(x, lambda i, j: f"records[{i}].embedding[{j}]")
    return VectorTable(
        x=x,
        labels=[r.label for r in records],
        splits=[r.split for r in records],
        texts=[r.text for r in records],
    )


# --- files -------------------------------------------------------------------------------


#: The first bytes of every .npy file (numpy.lib.format.MAGIC_PREFIX).
NPY_MAGIC = b"\x93NUMPY"


def parse_npy(fileobj: IO[bytes], field: str = "vectors") -> np.ndarray:
    """A .npy array (no pickled objects), read straight from the (spooled) upload file."""
    start = fileobj.tell()
    head = fileobj.read(len(NPY_MAGIC))
    fileobj.seek(start)
    if head != NPY_MAGIC:  # np.load would call any other bytes pickled data
        what = "a .npz archive" if head[:4] == b"PK\x03\x04" else "not a .npy file"
        raise ValidationFailed(
            f"{field}: {what} (a .npy file starts with \\x93NUMPY; write one with numpy.save)",
            field=field,
        )
    try:
        x = np.load(fileobj, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # a .npy of Python objects
            raise ValidationFailed(
                f"{field}: a .npy array of Python objects; send numbers (float32 or float64)",
                field=field,
            ) from exc
        raise ValidationFailed(
            f"{field}: not a .npy array of numbers ({exc})", field=field
        ) from exc
    except (OSError, EOFError) as exc:
        raise ValidationFailed(f"{field}: truncated or not a .npy file", field=field) from exc
    if not isinstance(x, np.ndarray):  # an .npz archive
        raise ValidationFailed(f"{field}: expected one .npy array, not an archive", field=field)
    return x


def parse_meta(filename: str | None, content_type: str | None, data: bytes) -> VectorTable:
    """The records file of a .npy upload: JSONL objects or CSV rows with `label` and optional
    `split` (default train) and `text`; one per vector, in order. ``x`` is left empty."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("records: not UTF-8 text", field="records") from exc
    labels: list[Label] = []
    splits: list[str] = []
    texts: list[str | None] = []
    name = (filename or "").lower()
    if name.endswith(".csv") or (content_type or "").startswith("text/csv"):
        reader = csv.DictReader(io.StringIO(text))
        cols = set(reader.fieldnames or [])
        if "label" not in cols or cols - {"label", "split", "text"}:
            raise ValidationFailed(
                "records: CSV needs a header with `label` and optionally `split`, `text`",
                field="records",
            )
        raw_labels = []
        try:
            for row in reader:
                raw_labels.append(row.get("label") or "")
                splits.append(row.get("split") or "train")
                texts.append(row.get("text") or None)
        except csv.Error as exc:
            raise ValidationFailed(f"records: malformed CSV ({exc})", field="records") from exc
        as_int = all(v.lstrip("-").isdigit() for v in raw_labels)
        labels = [int(v) for v in raw_labels] if as_int else list(raw_labels)
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj: Any = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(
                    f"records: line {n}: invalid JSON ({exc.msg})", field="records"
                ) from exc
            if (
                not isinstance(obj, dict)
                or "label" not in obj
                or set(obj)
                - {
                    "label",
                    "split",
                    "text",
                }
            ):
                raise ValidationFailed(
                    f"records: line {n}: expected an object with `label` and optionally "
                    "`split`, `text`",
                    field="records",
                )
            label, split, t = obj["label"], obj.get("split", "train"), obj.get("text")
            if not isinstance(label, str | int) or isinstance(label, bool):
                raise ValidationFailed(
                    f"records: line {n}: label must be a string or an integer", field="records"
                )
            if not isinstance(split, str) or not (t is None or isinstance(t, str)):
                raise ValidationFailed(
                    f"records: line {n}: split and text must be strings", field="records"
                )
            labels.append(label)
            splits.append(split)
            texts.append(t)
    if not labels:
        raise ValidationFailed("records: no records", field="records")
    return VectorTable(x=np.zeros((0, 0), np.float32), labels=labels, splits=splits, texts=texts)


def parse_arrow(fileobj: IO[bytes], filename: str | None) -> VectorTable:
    """A Parquet (.parquet) or Arrow IPC (.arrow / .feather) table with columns `embedding`
    (fixed-size or variable list of floats), `label`, and optionally `split`, `text`."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # the optional `arrow` extra
        raise ValidationFailed(
            "file: Parquet / Arrow uploads need pyarrow (pip install 'nmtune[arrow]'); "
            "send .npy vectors with a records file instead",
            field="file",
        ) from exc
    name = (filename or "").lower()
    try:
        if name.endswith(".parquet"):
            tbl = pq.read_table(fileobj)
        else:
            tbl = pa.ipc.open_file(pa.BufferReader(fileobj.read())).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise ValidationFailed(
            f"file: not a readable Parquet / Arrow table ({exc})", field="file"
        ) from exc
    cols = set(tbl.column_names)
    if not {"embedding", "label"} <= cols:
        raise ValidationFailed(
            "file: the table needs columns `embedding` and `label` (optional: `split`, `text`)",
            field="file",
        )
    emb = tbl.column("embedding").combine_chunks()
    if not (pa.types.is_list(emb.type) or pa.types.is_fixed_size_list(emb.type)) or not (
        pa.types.is_floating(emb.type.value_type)
    ):
        raise ValidationFailed(
            f"file: column `embedding` must be a list of floats, not {emb.type}",
            field="file.embedding",
        )
    n = len(emb)
    if emb.null_count:
        raise ValidationFailed("file.embedding: null vectors", field="file.embedding")
    flat = emb.flatten().to_numpy(zero_copy_only=False)
    if n and flat.size % n:
        raise ValidationFailed(
            "file.embedding: vectors of different dimensions", field="file.embedding"
        )
    if pa.types.is_list(emb.type):
        offsets = emb.offsets.to_numpy()
        if n and np.unique(np.diff(offsets)).size != 1:
            raise ValidationFailed(
                "file.embedding: vectors of different dimensions", field="file.embedding"
            )
    x = flat.reshape(n, flat.size // n if n else 0)
    labels = tbl.column("label").to_pylist()
    splits = tbl.column("split").to_pylist() if "split" in cols else ["train"] * n
    texts = tbl.column("text").to_pylist() if "text" in cols else [None] * n
    if any(v is None for v in labels):
        raise ValidationFailed("file.label: null labels", field="file.label")
    return VectorTable(
        x=x,
        labels=labels,
        splits=[s if s is not None else "train" for s in splits],
        texts=texts,
    )


def is_arrow(filename: str | None) -> bool:
    return (filename or "").lower().endswith((".parquet", ".arrow", ".feather"))
