"""SQL access for the embedding cache: bulk reads, conflict-tolerant bulk inserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.embeddings.models import CachedEmbedding

_READ_CHUNK = 500


def read_vectors(
    session: Session, tenant_id: str, backbone_hash: str, keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return {input_sha256: float32 vector (dim,)} for the keys present in the cache."""
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(keys), _READ_CHUNK):
        chunk = list(keys[i : i + _READ_CHUNK])
        rows = session.execute(
            select(CachedEmbedding.input_sha256, CachedEmbedding.dim, CachedEmbedding.vector).where(
                CachedEmbedding.tenant_id == tenant_id,
                CachedEmbedding.backbone_hash == backbone_hash,
                CachedEmbedding.input_sha256.in_(chunk),
            )
        ).all()
        for key, dim, blob in rows:
            vec = np.frombuffer(blob, dtype="<f4")
            if vec.shape[0] == dim:
                out[key] = vec
    return out


def count_present(session: Session, tenant_id: str, backbone_hash: str, keys: Sequence[str]) -> int:
    n = 0
    for i in range(0, len(keys), _READ_CHUNK):
        chunk = list(keys[i : i + _READ_CHUNK])
        n += int(
            session.scalar(
                select(func.count()).where(
                    CachedEmbedding.tenant_id == tenant_id,
                    CachedEmbedding.backbone_hash == backbone_hash,
                    CachedEmbedding.input_sha256.in_(chunk),
                )
            )
            or 0
        )
    return n


def write_vectors(
    session: Session,
    tenant_id: str,
    backbone_hash: str,
    items: Iterable[tuple[str, np.ndarray]],
) -> None:
    """Insert vectors; rows another writer stored first are kept (ON CONFLICT DO NOTHING)."""
    rows = [
        {
            "tenant_id": tenant_id,
            "backbone_hash": backbone_hash,
            "input_sha256": key,
            "dim": int(vec.shape[0]),
            "vector": np.ascontiguousarray(vec, dtype="<f4").tobytes(),
        }
        for key, vec in items
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(CachedEmbedding).on_conflict_do_nothing(
        index_elements=["tenant_id", "backbone_hash", "input_sha256"]
    )
    session.execute(stmt, rows)


def count_for_tenant(session: Session, tenant_id: str) -> int:
    return int(
        session.scalar(select(func.count()).where(CachedEmbedding.tenant_id == tenant_id)) or 0
    )


def purge_tenant(session: Session, tenant_id: str) -> None:
    session.execute(delete(CachedEmbedding).where(CachedEmbedding.tenant_id == tenant_id))
