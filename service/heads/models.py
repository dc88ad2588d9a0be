from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nmtune.service.db.base import Base, utcnow


class HeadStatus(StrEnum):
    """Stored as these strings (``heads.status``); changed only by service.heads.service."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Head(Base):
    __tablename__ = "heads"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_heads_tenant_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    backbone: Mapped[str] = mapped_column(String(200))
    backbone_identity: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(20))
    preset: Mapped[str] = mapped_column(String(40))
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=HeadStatus.PENDING.value)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    spectra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    weights: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    dim: Mapped[int | None] = mapped_column(Integer, default=None)
    classes: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # client-supplied `Idempotency-Key`: a retried POST returns the first head, never a second
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # the user's `metadata` object (column "metadata"; the attribute name is SQLAlchemy's)
    user_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    trained_at: Mapped[datetime | None] = mapped_column(default=None)
