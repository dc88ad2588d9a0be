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


class DatasetFeatures(Base):
    """A dataset's features under one backbone, in dataset order: rows [start, start +
    n_rows) as little-endian float32 blocks (service.db.blocks).

    A copy of what the per-key cache (``embeddings``) holds for the dataset's examples,
    written once the whole dataset was embedded, so that later heads and audits of the
    dataset read a few large rows instead of one row per vector. Examples never change
    and cache rows are never overwritten, so the copy never goes stale; it goes with its
    dataset (and so with the tenant).
    """

    __tablename__ = "dataset_features"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    backbone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
