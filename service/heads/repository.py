from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.heads.models import Head
from service.jobs.models import Job


def get(session: Session, tenant_id: str, head_id: str) -> Head | None:
    head = session.get(Head, head_id)
    return head if head is not None and head.tenant_id == tenant_id else None


def latest_job_id(session: Session, head_id: str) -> str | None:
    return session.scalar(
        select(Job.id).where(Job.head_id == head_id).order_by(Job.created_at.desc()).limit(1)
    )


def page(
    session: Session, tenant_id: str, limit: int, offset: int, dataset_id: str | None = None
) -> tuple[list[Head], int]:
    cond = [Head.tenant_id == tenant_id]
    if dataset_id:
        cond.append(Head.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(Head).where(*cond)) or 0
    items = session.scalars(
        select(Head)
        .where(*cond)
        .order_by(Head.created_at.desc(), Head.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(items), int(total)
