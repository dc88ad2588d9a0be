from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from nmtune.service.db.base import Base, utcnow


class CachedEmbedding(Base):
    """One vector: (tenant, sha256 of backbone identity, sha256 of input bytes) -> float32 bytes."""

    __tablename__ = "embeddings"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    backbone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    input_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
