"""SQL access for the embedding cache: bulk reads, conflict-tolerant bulk inserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service.embeddings.models import CachedEmbedding

_READ_CHUNK = 500  # SQLite: bound parameters per IN list
_PG_READ_CHUNK = 5000


_PG_READ = text(
    "SELECT e.input_sha256, e.dim, e.vector FROM unnest(CAST(:keys AS text[])) AS k(key) "
    "JOIN embeddings e ON e.tenant_id = :tenant AND e.backbone_hash = :bh "
    "AND e.input_sha256 = k.key"
)


def read_vectors(
    session: Session, tenant_id: str, backbone_hash: str, keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return {input_sha256: float32 vector (dim,)} for the keys present in the cache.

    On PostgreSQL the keys are joined from an array (one primary-key probe each), which stays
    fast when the table's statistics are stale, e.g. right after a large job wrote it; an
    `IN (...)` list then gets planned as a scan of the whole (tenant, backbone) range.
    """
    out: dict[str, np.ndarray] = {}
    if session.get_bind().dialect.name == "postgresql":
        for i in range(0, len(keys), _PG_READ_CHUNK):
            params = {
                "keys": list(keys[i : i + _PG_READ_CHUNK]),
                "tenant": tenant_id,
                "bh": backbone_hash,
            }
            for key, dim, blob in session.execute(_PG_READ, params).all():
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.shape[0] == dim:
                    out[key] = vec
        return out
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
