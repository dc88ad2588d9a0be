from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from nmtune.service.datasets.models import Dataset, Example
from nmtune.service.datasets.validation import CleanDataset
from nmtune.service.datasets.vectors import CleanVectors
from nmtune.service.db.base import new_id
from nmtune.service.db.blocks import read_blocks, write_blocks

_EXAMPLE_COLUMNS = ("dataset_id", "position", "split", "label", "text", "image", "sha256")


def create(
    session: Session,
    tenant_id: str,
    name: str,
    clean: CleanDataset,
    metadata: dict[str, Any] | None = None,
    max_text_chars: int | None = None,
) -> Dataset:
    ds = Dataset(
        id=new_id("ds"),
        tenant_id=tenant_id,
        name=name,
        modality=clean.modality,
        label_kind=clean.label_kind,
        n_examples=len(clean.records),
        counts={
            "splits": clean.counts,
            "classes": clean.classes,
            **_truncation(clean, max_text_chars),
        },
        user_metadata=dict(metadata or {}),
    )
    session.add(ds)
    session.flush()
    rows = [
        {
            "dataset_id": ds.id,
            "position": i,
            "split": r.split,
            "label": r.label,
            "text": r.text,
            "image": r.image,
            "sha256": r.sha256,
        }
        for i, r in enumerate(clean.records)
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Example), rows[start : start + 5000])
    return ds


#: cut records listed in a dataset's truncation record (all are counted)
TRUNCATION_LISTED = 1000


def _truncation(clean: CleanDataset, max_chars: int | None) -> dict[str, Any]:
    if not clean.truncated:
        return {}
    return {
        "truncation": {
            "max_chars": max_chars,
            "count": len(clean.truncated),
            "records": [
                {"position": p, "original_chars": n} for p, n in clean.truncated[:TRUNCATION_LISTED]
            ],
        }
    }


def create_vectors(session: Session, tenant_id: str, name: str, clean: CleanVectors) -> Dataset:
    """A vector dataset: its examples (label, split, optional text) and its vectors."""
    n, dim = (int(v) for v in clean.x.shape)
    ds = Dataset(
        id=new_id("ds"),
        tenant_id=tenant_id,
        name=name,
        modality="vector",
        label_kind=clean.label_kind,
        n_examples=n,
        counts={"splits": clean.counts, "classes": clean.classes},
        backbone=clean.backbone,
        backbone_identity=clean.backbone_identity,
        dim=dim,
    )
    session.add(ds)
    session.flush()
    keys = clean.keys()
    rows = zip(
        [ds.id] * n,
        range(n),
        clean.splits,
        clean.labels,
        clean.texts,
        [None] * n,
        keys,
        strict=True,
    )
    bulk_insert(session, "examples", _EXAMPLE_COLUMNS, rows)
    write_blocks(session, "dataset_vectors", {"dataset_id": ds.id}, clean.x)
    return ds


def load_vectors(session: Session, ds: Dataset) -> np.ndarray:
    """All of a vector dataset's vectors, (n_examples, dim) float32, in dataset order; read
    block by block into one array (service.db.blocks)."""
    assert ds.dim is not None
    x = read_blocks(session, "dataset_vectors", {"dataset_id": ds.id}, ds.n_examples, ds.dim)
    if x is None:
        raise RuntimeError(f"dataset {ds.id}: its stored vectors are not its {ds.n_examples} rows")
    return x


def bulk_insert(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: Any,
    batch: int = 5000,
) -> None:
    """Insert tuples through the driver: binary COPY on PostgreSQL, executemany on SQLite."""
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})"
    cur = raw.cursor()
    try:
        buf: list[Any] = []
        for row in rows:
            buf.append(row)
            if len(buf) >= batch:
                cur.executemany(sql, buf)
                buf.clear()
        if buf:
            cur.executemany(sql, buf)
    finally:
        cur.close()


def get(session: Session, tenant_id: str, dataset_id: str) -> Dataset | None:
    ds = session.get(Dataset, dataset_id)
    return ds if ds is not None and ds.tenant_id == tenant_id else None


def page(
    session: Session, tenant_id: str, limit: int, offset: int, after: Dataset | None = None
) -> tuple[list[Dataset], int, bool]:
    """(datasets, total, has_more), newest first; ``after``: only those that follow it."""
    total = session.scalar(select(func.count()).where(Dataset.tenant_id == tenant_id)) or 0
    stmt = select(Dataset).where(Dataset.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(
            or_(
                Dataset.created_at < after.created_at,
                and_(Dataset.created_at == after.created_at, Dataset.id > after.id),
            )
        )
    rows = session.scalars(
        stmt.order_by(Dataset.created_at.desc(), Dataset.id).limit(limit + 1).offset(offset)
    ).all()
    return list(rows[:limit]), int(total), len(rows) > limit


def examples(
    session: Session, dataset_id: str, splits: Sequence[str] | None = None
) -> list[tuple[str, str, str | None, bytes | None, str, int]]:
    """(split, label, text, image, sha256, position) in dataset order."""
    stmt = select(
        Example.split, Example.label, Example.text, Example.image, Example.sha256, Example.position
    ).where(Example.dataset_id == dataset_id)
    if splits is not None:
        stmt = stmt.where(Example.split.in_(list(splits)))
    rows = session.execute(stmt.order_by(Example.position)).all()
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def delete(session: Session, ds: Dataset) -> None:
    session.delete(ds)
