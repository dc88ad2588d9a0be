from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from nmtune.service.datasets import repository as repo
from nmtune.service.datasets.models import Dataset
from nmtune.service.datasets.schemas import (
    DatasetOut,
    DatasetPage,
    Record,
    SplitSummary,
    Truncation,
    VectorDatasetCreate,
)
from nmtune.service.datasets.validation import check_name, validate_records
from nmtune.service.datasets.vectors import VectorTable, table_from_records, validate_table
from nmtune.service.db.session import Database
from nmtune.service.errors import Conflict, NotFound, ValidationFailed
from nmtune.service.jobs import repository as jobs_repo
from nmtune.service.ops.hygiene import first_bad
from nmtune.service.settings import Settings


@dataclass
class LoadedExamples:
    splits: list[str]
    labels: list[str]
    inputs: list[str | bytes]
    keys: list[str]  # sha256 of each input: the embedding cache key
    positions: list[int]  # each example's row in the dataset (0..n_examples-1)


def load_examples(db: Database, dataset_id: str, splits: list[str] | None = None) -> LoadedExamples:
    """A dataset's examples in order (optionally only ``splits``); synchronous."""
    with db.session() as s:
        rows = repo.examples(s, dataset_id, splits)
    return LoadedExamples(
        splits=[r[0] for r in rows],
        labels=[r[1] for r in rows],
        inputs=[r[2] if r[2] is not None else (r[3] or b"") for r in rows],
        keys=[r[4] for r in rows],
        positions=[r[5] for r in rows],
    )


def to_out(ds: Dataset) -> DatasetOut:
    splits = ds.counts.get("splits", {})
    classes = ds.counts.get("classes", [])
    return DatasetOut(
        id=ds.id,
        name=ds.name,
        modality=ds.modality,  # type: ignore[arg-type]
        label_kind=ds.label_kind,  # type: ignore[arg-type]
        n_examples=ds.n_examples,
        classes=[int(c) for c in classes] if ds.label_kind == "int" else list(classes),
        splits={
            s: SplitSummary(count=sum(labels.values()), labels=labels)
            for s, labels in splits.items()
        },
        metadata=dict(ds.user_metadata or {}),
        created_at=ds.created_at,
        backbone=ds.backbone,
        backbone_identity=ds.backbone_identity,
        dim=ds.dim,
        truncation=(
            Truncation.model_validate(ds.counts["truncation"])
            if ds.counts.get("truncation")
            else None
        ),
    )


def create_dataset(
    session: Session,
    settings: Settings,
    tenant_id: str,
    name: str,
    records: list[Record],
    metadata: dict[str, Any] | None = None,
    long_texts: str = "reject",
) -> DatasetOut:
    check_name(name, "name")
    bad = first_bad(metadata or {}, "metadata")
    if bad is not None:
        raise ValidationFailed(f"{bad[0]}: holds {bad[1]}", field=bad[0])
    clean = validate_records(records, settings, long_texts)
    ds = repo.create(session, tenant_id, name, clean, metadata, settings.max_text_chars)
    return to_out(ds)


def create_vector_dataset(
    session: Session,
    settings: Settings,
    tenant_id: str,
    name: str,
    backbone: str,
    backbone_identity: str,
    table: VectorTable,
) -> DatasetOut:
    """A dataset of precomputed vectors (checked as a whole first); heads train on it at
    once, with no backbone call."""
    for value, field in (
        (name, "name"),
        (backbone, "backbone"),
        (backbone_identity, "backbone_identity"),
    ):
        check_name(value, field)
    clean = validate_table(table, backbone, backbone_identity, settings)
    return to_out(repo.create_vectors(session, tenant_id, name, clean))


def create_vector_dataset_json(
    session: Session, settings: Settings, tenant_id: str, body: VectorDatasetCreate
) -> DatasetOut:
    for value, field in (
        (body.name, "name"),
        (body.backbone, "backbone"),
        (body.backbone_identity, "backbone_identity"),
    ):
        check_name(value, field)
    table = table_from_records(body.records, settings)
    clean = validate_table(
        table, body.backbone, body.backbone_identity, settings, vectors_field="records"
    )
    return to_out(repo.create_vectors(session, tenant_id, body.name, clean))


def load_vectors(db: Database, ds: Dataset) -> np.ndarray:
    """A vector dataset's vectors (n, dim) float32 in dataset order; synchronous."""
    with db.session() as s:
        return repo.load_vectors(s, ds)


def get_dataset(session: Session, tenant_id: str, dataset_id: str) -> Dataset:
    ds = repo.get(session, tenant_id, dataset_id)
    if ds is None:
        raise NotFound(f"dataset {dataset_id!r} not found", field="dataset_id")
    return ds


def list_datasets(
    session: Session, tenant_id: str, limit: int, offset: int, after: str | None = None
) -> DatasetPage:
    cursor = None
    if after is not None:
        cursor = repo.get(session, tenant_id, after)
        if cursor is None:
            raise NotFound(f"after: dataset {after!r} not found", field="after")
    items, total, has_more = repo.page(session, tenant_id, limit, offset, cursor)
    return DatasetPage(
        items=[to_out(d) for d in items],
        total=total,
        limit=limit,
        offset=offset,
        has_more=has_more,
        next_after=items[-1].id if has_more and items else None,
    )


def delete_dataset(session: Session, tenant_id: str, dataset_id: str) -> None:
    ds = get_dataset(session, tenant_id, dataset_id)
    busy = jobs_repo.unfinished(session, dataset_id=ds.id)
    if busy:
        raise Conflict(
            f"dataset {dataset_id!r} is used by unfinished job {busy[0].id}; cancel it first"
        )
    repo.delete(session, ds)
