from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from service.datasets.models import Dataset, Example
from service.datasets.validation import CleanDataset
from service.db.base import new_id


def create(
    session: Session,
    tenant_id: str,
    name: str,
    clean: CleanDataset,
    metadata: dict[str, Any] | None = None,
) -> Dataset:
    ds = Dataset(
        id=new_id("ds"),
        tenant_id=tenant_id,
        name=name,
        modality=clean.modality,
        label_kind=clean.label_kind,
        n_examples=len(clean.records),
        counts={"splits": clean.counts, "classes": clean.classes},
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
) -> list[tuple[str, str, str | None, bytes | None, str]]:
    """(split, label, text, image, sha256) in dataset order."""
    stmt = select(Example.split, Example.label, Example.text, Example.image, Example.sha256).where(
        Example.dataset_id == dataset_id
    )
    if splits is not None:
        stmt = stmt.where(Example.split.in_(list(splits)))
    rows = session.execute(stmt.order_by(Example.position)).all()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def delete(session: Session, ds: Dataset) -> None:
    session.delete(ds)
