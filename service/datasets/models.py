from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nmtune.service.db.base import Base, utcnow


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    modality: Mapped[str] = mapped_column(String(10))  # text | image | vector
    label_kind: Mapped[str] = mapped_column(String(10))  # str | int
    n_examples: Mapped[int] = mapped_column(Integer)
    # {split: {label: count}}: small, written once with the dataset
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the user's `metadata` object (column "metadata"; the attribute name is SQLAlchemy's)
    user_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # vector datasets (modality "vector"): precomputed embeddings of a declared backbone,
    # stored in dataset_vectors; NULL for text / image datasets
    backbone: Mapped[str | None] = mapped_column(String(200), default=None)
    backbone_identity: Mapped[str | None] = mapped_column(String(2000), default=None)
    dim: Mapped[int | None] = mapped_column(Integer, default=None)


class Example(Base):
    __tablename__ = "examples"
    __table_args__ = (Index("ix_examples_dataset_split", "dataset_id", "split", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    image: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    sha256: Mapped[str] = mapped_column(String(64))


class DatasetVectors(Base):
    """Rows [start, start + n_rows) of a vector dataset: little-endian float32, row-major."""

    __tablename__ = "dataset_vectors"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
