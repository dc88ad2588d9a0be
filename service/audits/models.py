from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nmtune.service.db.base import Base, utcnow


class AuditStatus(StrEnum):
    """Stored as these strings (``audits.status``); changed only by service.audits.service."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Audit(Base):
    """One label audit of some splits of a dataset under one backbone."""

    __tablename__ = "audits"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    backbone: Mapped[str] = mapped_column(String(200))
    backbone_identity: Mapped[str] = mapped_column(String(2000))
    splits: Mapped[list[str]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=AuditStatus.PENDING.value)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    n_examples: Mapped[int] = mapped_column(Integer, default=0)
    n_flagged: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(40), default=None)  # its `audit` job
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditItem(Base):
    """One audited example: its position in the dataset, given / suggested label, score."""

    __tablename__ = "audit_items"
    __table_args__ = (
        Index("ix_audit_items_audit_score", "audit_id", "flagged", "score"),
        Index("ix_audit_items_audit_position", "audit_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # Example.position in the dataset
    split: Mapped[str] = mapped_column(String(80))
    given: Mapped[str] = mapped_column(String(200))
    suggested: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean)
