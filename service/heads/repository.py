from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from nmtune.service.heads.models import Head


def get(session: Session, tenant_id: str, head_id: str) -> Head | None:
    head = session.get(Head, head_id)
    return head if head is not None and head.tenant_id == tenant_id else None


def by_idempotency_key(session: Session, tenant_id: str, key: str) -> Head | None:
    return session.scalar(
        select(Head).where(Head.tenant_id == tenant_id, Head.idempotency_key == key)
    )


def page(
    session: Session,
    tenant_id: str,
    limit: int,
    offset: int,
    dataset_id: str | None = None,
    after: Head | None = None,
) -> tuple[list[Head], int, bool]:
    """(heads, total, has_more), newest first; ``after``: only those that follow it."""
    cond = [Head.tenant_id == tenant_id]
    if dataset_id:
        cond.append(Head.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(Head).where(*cond)) or 0
    stmt = select(Head).where(*cond)
    if after is not None:
        stmt = stmt.where(
            or_(
                Head.created_at < after.created_at,
                and_(Head.created_at == after.created_at, Head.id > after.id),
            )
        )
    rows = session.scalars(
        stmt.order_by(Head.created_at.desc(), Head.id).limit(limit + 1).offset(offset)
    ).all()
    return list(rows[:limit]), int(total), len(rows) > limit
