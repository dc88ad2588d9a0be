"""Checks on a dataset before anything is written; each failure names the field at fault."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmtune.service.datasets.schemas import SPLIT_PATTERN, Record
from nmtune.service.errors import PayloadTooLarge, ValidationFailed
from nmtune.service.ops.hygiene import bad_char
from nmtune.service.settings import Settings

#: Integer labels must fit a signed 64-bit integer (JSON, CSV and the database agree).
MAX_INT_LABEL = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_SPLIT_RE = re.compile(SPLIT_PATTERN)
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"RIFF",
)


@dataclass
class CleanRecord:
    split: str
    label: str
    text: str | None
    image: bytes | None
    sha256: str


@dataclass
class CleanDataset:
    modality: str
    label_kind: str
    records: list[CleanRecord]
    counts: dict[str, dict[str, int]]
    classes: list[str]
    # (position, original length) of each text cut to max_text_chars (long_texts="truncate")
    truncated: list[tuple[int, int]] = field(default_factory=list)


def decode_image(value: str, field: str, max_bytes: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"{field}: not valid base64", field=field) from exc
    if not raw:
        raise ValidationFailed(f"{field}: empty image", field=field)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"{field}: image larger than {max_bytes} bytes", field=field)
    if not raw.startswith(_IMAGE_MAGIC):
        raise ValidationFailed(f"{field}: not a PNG, JPEG, GIF, BMP or WEBP image", field=field)
    return raw


def check_text(value: str, field: str, max_chars: int) -> str:
    if not value.strip():
        raise ValidationFailed(f"{field}: empty text", field=field)
    if len(value) > max_chars:
        raise ValidationFailed(
            f"{field}: text longer than {max_chars} characters ({len(value)})", field=field
        )
    why = bad_char(value)
    if why is not None:
        raise ValidationFailed(f"{field}: text contains {why}", field=field)
    return value


#: rows checked per block by :func:`check_finite` (bounds the temporary mask's memory)
FINITE_BLOCK_ROWS = 65_536


def check_finite(x: np.ndarray[Any, Any], field_of: Callable[[int, int], str]) -> None:
    """Refuse a float32 matrix (n, D) with a NaN or infinite cell (values beyond the float32
    range became inf on conversion); the 422 names the first one: ``field_of(row, column)``."""
    for start in range(0, int(x.shape[0]), FINITE_BLOCK_ROWS):
        bad = ~np.isfinite(x[start : start + FINITE_BLOCK_ROWS])
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            where = field_of(start + i, j)
            raise ValidationFailed(
                f"{where}: NaN, infinite or beyond the float32 range", field=where
            )


def check_name(value: str, field: str) -> str:
    """A name or label: no control character (NUL, newline...) and no lone surrogate."""
    why = bad_char(value) or ("a control character" if _CONTROL.search(value) else None)
    if why is not None:
        raise ValidationFailed(f"{field}: contains {why}", field=field)
    return value


def validate_records(
    records: list[Record], settings: Settings, long_texts: str = "reject"
) -> CleanDataset:
    """Check the records as a whole. ``long_texts``: "reject" a text over
    ``settings.max_text_chars`` (422 naming it) or "truncate" it to that many characters
    (recorded in ``CleanDataset.truncated``)."""
    if long_texts not in ("reject", "truncate"):
        raise ValidationFailed("long_texts: must be 'reject' or 'truncate'", field="long_texts")
    truncated: list[tuple[int, int]] = []
    if len(records) > settings.max_records:
        raise PayloadTooLarge(
            f"records: {len(records)} records, at most {settings.max_records} allowed",
            field="records",
        )
    first = records[0]
    modality = "image" if first.image is not None and first.text is None else "text"
    label_kind = "int" if isinstance(first.label, int) else "str"
    clean: list[CleanRecord] = []
    for i, r in enumerate(records):
        f = f"records[{i}]"
        if not _SPLIT_RE.fullmatch(r.split):  # fullmatch: "test\n" is not "test"
            raise ValidationFailed(
                f"{f}.split: unknown split {r.split!r}; use train, validation, test, "
                "ood:<name> or validation:ood:<name>",
                field=f"{f}.split",
            )
        kind = "int" if isinstance(r.label, int) else "str"
        if kind != label_kind:
            raise ValidationFailed(
                f"{f}.label: labels must all be strings or all integers", field=f"{f}.label"
            )
        if kind == "int" and abs(int(r.label)) > MAX_INT_LABEL:
            raise ValidationFailed(
                f"{f}.label: integer labels must fit in 64 bits", field=f"{f}.label"
            )
        label = str(r.label)
        if len(label) > 200 or (kind == "str" and not label.strip()):
            raise ValidationFailed(
                f"{f}.label: empty or longer than 200 characters", field=f"{f}.label"
            )
        check_name(label, f"{f}.label")
        if modality == "text":
            if r.image is not None:
                raise ValidationFailed(
                    f"{f}.image: a text dataset cannot hold images", field=f"{f}.image"
                )
            if r.text is None:
                raise ValidationFailed(f"{f}.text: missing", field=f"{f}.text")
            text = r.text
            if long_texts == "truncate" and len(text) > settings.max_text_chars:
                truncated.append((i, len(text)))
                text = text[: settings.max_text_chars]
            text = check_text(text, f"{f}.text", settings.max_text_chars)
            clean.append(
                CleanRecord(
                    r.split, label, text, None, hashlib.sha256(text.encode("utf-8")).hexdigest()
                )
            )
        else:
            if r.text is not None:
                raise ValidationFailed(
                    f"{f}.text: an image dataset cannot hold text", field=f"{f}.text"
                )
            if r.image is None:
                raise ValidationFailed(f"{f}.image: missing", field=f"{f}.image")
            raw = decode_image(r.image, f"{f}.image", settings.max_image_bytes)
            clean.append(CleanRecord(r.split, label, None, raw, hashlib.sha256(raw).hexdigest()))

    counts, classes = summarize_labels(
        [r2.split for r2 in clean], [r2.label for r2 in clean], label_kind, settings
    )
    return CleanDataset(
        modality=modality,
        label_kind=label_kind,
        records=clean,
        counts=counts,
        classes=classes,
        truncated=truncated,
    )


def summarize_labels(
    splits: Sequence[str], labels: list[str], label_kind: str, settings: Settings
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Counts per split and label, and the classes (those of train), after the train rules:
    a train split with at least two classes of ``min_examples_per_class`` examples each, and
    no label outside train. Errors name ``records[i].label`` / ``records``."""
    counts: dict[str, Counter[str]] = {}
    for split, label in zip(splits, labels, strict=True):
        counts.setdefault(split, Counter())[label] += 1
    train = counts.get("train")
    if not train:
        raise ValidationFailed("records: no record has split 'train'", field="records")
    if len(train) < 2:
        raise ValidationFailed(
            f"records: the train split has {len(train)} class; at least 2 are needed",
            field="records",
        )
    for label, n in sorted(train.items()):
        if n < settings.min_examples_per_class:
            idx = labels.index(label)
            raise ValidationFailed(
                f"records[{idx}].label: class {label!r} has {n} training example(s); "
                f"at least {settings.min_examples_per_class} are needed",
                field=f"records[{idx}].label",
            )
    for i, (split, label) in enumerate(zip(splits, labels, strict=True)):
        if split != "train" and label not in train:
            raise ValidationFailed(
                f"records[{i}].label: label {label!r} in split {split!r} never appears in train",
                field=f"records[{i}].label",
            )
    classes = sorted(train, key=(lambda s: int(s)) if label_kind == "int" else None)
    return {s: dict(sorted(c.items())) for s, c in counts.items()}, classes
