from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from nmtune.service.audits.models import Audit, AuditItem
from nmtune.service.datasets.models import Example

_ORDER = {
    "-score": (AuditItem.score.desc(), AuditItem.position),
    "score": (AuditItem.score.asc(), AuditItem.position),
    "position": (AuditItem.position.asc(),),
    "-position": (AuditItem.position.desc(),),
}


def get(session: Session, tenant_id: str, dataset_id: str, audit_id: str) -> Audit | None:
    audit = session.get(Audit, audit_id)
    if audit is None or audit.tenant_id != tenant_id or audit.dataset_id != dataset_id:
        return None
    return audit


def get_for_tenant(session: Session, tenant_id: str, audit_id: str) -> Audit | None:
    audit = session.get(Audit, audit_id)
    return audit if audit is not None and audit.tenant_id == tenant_id else None


def page(
    session: Session, tenant_id: str, dataset_id: str, limit: int, offset: int
) -> tuple[list[Audit], int]:
    cond = [Audit.tenant_id == tenant_id, Audit.dataset_id == dataset_id]
    total = session.scalar(select(func.count()).select_from(Audit).where(*cond)) or 0
    items = session.scalars(
        select(Audit)
        .where(*cond)
        .order_by(Audit.created_at.desc(), Audit.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(items), int(total)


def dataset_rows(
    session: Session, dataset_id: str, splits: Sequence[str]
) -> list[tuple[int, str, str, str | None, bytes | None, str]]:
    """(position, split, label, text, image, sha256) of the examples of ``splits``."""
    stmt = (
        select(
            Example.position,
            Example.split,
            Example.label,
            Example.text,
            Example.image,
            Example.sha256,
        )
        .where(Example.dataset_id == dataset_id, Example.split.in_(list(splits)))
        .order_by(Example.position)
    )
    return [tuple(r) for r in session.execute(stmt).all()]  # type: ignore[misc]


def replace_items(session: Session, audit_id: str, rows: list[dict[str, Any]]) -> None:
    """The audit's items (a rerun of the job replaces, never duplicates them)."""
    session.execute(delete(AuditItem).where(AuditItem.audit_id == audit_id))
    for start in range(0, len(rows), 1000):
        session.execute(insert(AuditItem), rows[start : start + 1000])


def _item_select(audit: Audit, flagged_only: bool) -> Any:
    stmt = (
        select(
            AuditItem.position,
            AuditItem.split,
            Example.text,
            Example.sha256,
            AuditItem.given,
            AuditItem.suggested,
            AuditItem.score,
            AuditItem.flagged,
        )
        .join(
            Example,
            (Example.dataset_id == audit.dataset_id) & (Example.position == AuditItem.position),
        )
        .where(AuditItem.audit_id == audit.id)
    )
    return stmt.where(AuditItem.flagged.is_(True)) if flagged_only else stmt


def items_page(
    session: Session, audit: Audit, flagged_only: bool, sort: str, limit: int, offset: int
) -> tuple[list[Any], int]:
    cond = [AuditItem.audit_id == audit.id]
    if flagged_only:
        cond.append(AuditItem.flagged.is_(True))
    total = session.scalar(select(func.count()).select_from(AuditItem).where(*cond)) or 0
    stmt = _item_select(audit, flagged_only).order_by(*_ORDER[sort]).limit(limit).offset(offset)
    return list(session.execute(stmt).all()), int(total)


def iter_items(
    session: Session, audit: Audit, flagged_only: bool, sort: str, chunk: int = 1000
) -> Iterator[Any]:
    """Every item in ``sort`` order, read ``chunk`` rows at a time (exports)."""
    offset = 0
    while True:
        stmt = _item_select(audit, flagged_only).order_by(*_ORDER[sort]).limit(chunk)
        rows = session.execute(stmt.offset(offset)).all()
        yield from rows
        if len(rows) < chunk:
            return
        offset += chunk


def weights_by_position(session: Session, audit_id: str) -> dict[int, tuple[float, bool]]:
    """position -> (score, flagged) of every audited example."""
    stmt = select(AuditItem.position, AuditItem.score, AuditItem.flagged).where(
        AuditItem.audit_id == audit_id
    )
    return {int(p): (float(s), bool(f)) for p, s, f in session.execute(stmt).all()}
