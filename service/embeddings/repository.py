"""SQL access for the embedding cache: bulk reads by key, conflict-tolerant bulk inserts,
and the dataset feature snapshots (a dataset's vectors as blocks, read in one go).

Both directions go through the driver's own connection (the Session's transaction), without
one SQLAlchemy row object per vector:

- reads send all keys of a batch as ONE parameter (a JSON array joined with ``json_each``
  on SQLite, a ``text[]`` probed key by key from ``unnest ... WITH ORDINALITY`` on
  PostgreSQL, sent as a binary array (the text format quotes-checks every key: 7 ms per
  1,000 keys) and fetched in binary format so ``bytea`` is not hex-decoded), get back
  ``(position, blob)`` pairs and decode them with one ``np.frombuffer`` into a (m, dim)
  float32 array;
- writes are one ``executemany`` on SQLite and one ``INSERT ... SELECT FROM unnest(...)``
  with binary array parameters on PostgreSQL (``synchronous_commit`` off for that
  transaction: cache rows can be recomputed); both ``ON CONFLICT DO NOTHING`` (rows another
  writer stored first are kept).

On PostgreSQL a write goes with its ``SET LOCAL`` (and the transaction's ``BEGIN``) in one
pipelined round trip. What is left per row is the server's: the heap tuple, the entry in
the three-column text primary key, the tenant foreign-key check (benchmarks/results/perf.md
section 4 has the figures).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nmtune.service.db.base import utcnow
from nmtune.service.db.blocks import driver, read_blocks, write_blocks
from nmtune.service.embeddings.models import CachedEmbedding, DatasetFeatures

#: keys per read statement (one bound parameter each way, so only memory bounds it)
READ_BATCH = 20_000
#: rows per write statement
WRITE_BATCH = 5_000

_SQLITE_READ = (
    "SELECT j.key, e.vector FROM json_each(?) AS j CROSS JOIN embeddings AS e "
    "ON e.tenant_id = ? AND e.backbone_hash = ? AND e.input_sha256 = j.value"
)
# one primary-key probe per key, whatever the statistics say: a LATERAL subquery with LIMIT
# cannot be flattened into a join. The plain join was planned, on a table written faster
# than ANALYZE runs (estimate: 1 row of the tenant and backbone), as a nested loop with the
# key as a join filter, the key array scanned once per stored row: 100k x 20k comparisons,
# minutes per read (benchmarks/results/perf.md section 4, session 15)
_PG_READ = (
    "SELECT k.ord - 1, e.vector FROM unnest(%b::text[]) WITH ORDINALITY AS k(key, ord) "
    "CROSS JOIN LATERAL (SELECT vector FROM embeddings WHERE tenant_id = %s "
    "AND backbone_hash = %s AND input_sha256 = k.key LIMIT 1) AS e"
)
_SQLITE_WRITE = (
    "INSERT INTO embeddings (tenant_id, backbone_hash, input_sha256, dim, vector, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, backbone_hash, input_sha256) DO NOTHING"
)
_PG_WRITE = (
    "INSERT INTO embeddings (tenant_id, backbone_hash, input_sha256, dim, vector, created_at) "
    "SELECT %s, %s, k, %s, v, %s FROM unnest(%b::text[], %b::bytea[]) AS u(k, v) "
    "ON CONFLICT (tenant_id, backbone_hash, input_sha256) DO NOTHING"
)


def read_matrix(
    session: Session,
    tenant_id: str,
    backbone_hash: str,
    keys: Sequence[str],
    dim: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The cached vectors of ``keys``: ``(positions, vectors)``.

    ``positions`` (int64, ascending) index into ``keys``; ``vectors[i]`` (float32, one
    (m, dim) array) is the vector of ``keys[positions[i]]``. Rows of another dimension than
    ``dim`` (default: the first row's) are left out, as if missing. Duplicate keys are each
    answered.
    """
    dialect, raw = driver(session)
    pos_parts: list[np.ndarray] = []
    blobs_all: list[bytes] = []
    for start in range(0, len(keys), READ_BATCH):
        chunk = keys[start : start + READ_BATCH]
        # probe in key order: neighbouring primary-key pages, far fewer page-cache misses
        order = sorted(range(len(chunk)), key=chunk.__getitem__)
        probe = [chunk[i] for i in order]
        if dialect == "postgresql":
            with raw.cursor(binary=True) as cur:
                cur.execute(_PG_READ, (probe, tenant_id, backbone_hash))
                rows = cur.fetchall()
        else:
            cur = raw.cursor()
            try:
                cur.execute(_SQLITE_READ, (json.dumps(probe), tenant_id, backbone_hash))
                rows = cur.fetchall()
            finally:
                cur.close()
        if not rows:
            continue
        pos, blobs = zip(*rows, strict=True)
        p = np.asarray(order, dtype=np.int64)[np.fromiter(pos, dtype=np.int64, count=len(rows))]
        n_bytes = np.fromiter(map(len, blobs), dtype=np.int64, count=len(rows))
        if dim is None:
            dim = int(n_bytes[0]) // 4
        ok = n_bytes == 4 * dim  # the stored dim column always equals len(vector) / 4
        if not ok.all():
            blobs = tuple(b for b, good in zip(blobs, ok.tolist(), strict=True) if good)
            p = p[ok]
        pos_parts.append(p + start)
        blobs_all.extend(blobs)
    if dim is None or not pos_parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim or 0), dtype=np.float32)
    positions = pos_parts[0] if len(pos_parts) == 1 else np.concatenate(pos_parts)
    # one copy of the bytes: all batches' blobs joined once
    vectors = np.frombuffer(b"".join(blobs_all), dtype="<f4").reshape(-1, dim)
    rank = np.argsort(positions, kind="stable")
    if not np.array_equal(rank, np.arange(rank.size)):
        positions, vectors = positions[rank], vectors[rank]
    return positions, vectors.astype(np.float32, copy=False)


def read_vectors(
    session: Session, tenant_id: str, backbone_hash: str, keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return {input_sha256: float32 vector (dim,)} for the keys present in the cache."""
    positions, vectors = read_matrix(session, tenant_id, backbone_hash, keys)
    return {keys[int(p)]: vectors[i] for i, p in enumerate(positions)}


def write_matrix(
    session: Session,
    tenant_id: str,
    backbone_hash: str,
    keys: Sequence[str],
    vectors: np.ndarray,
) -> None:
    """Insert ``vectors[i]`` under ``keys[i]``; rows already stored are kept.

    On PostgreSQL the surrounding transaction commits without waiting for the WAL flush
    (``SET LOCAL synchronous_commit``): give it a transaction of its own, as EmbeddingCache does.
    """
    if len(keys) != len(vectors):
        raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
    if not len(keys):
        return
    x = np.ascontiguousarray(vectors, dtype="<f4")
    if x.ndim != 2:
        raise ValueError(f"vectors must be (n, dim), got shape {x.shape}")
    dim = int(x.shape[1])
    row_bytes = 4 * dim
    buf = x.tobytes()
    dialect, raw = driver(session)
    now = utcnow()
    if dialect != "postgresql":
        # stored as the ORM stores it: the dialect's own DATETIME text ('2026-12-01
        # 13:19:41.366878'), one string for the statement (the type decorator's own bind
        # processor left a datetime, which sqlite3's deprecated default adapter turned into
        # an isoformat 'T...+00:00' text per row)
        sa_dialect = session.get_bind().dialect
        column = CachedEmbedding.__table__.c.created_at
        process = column.type.dialect_impl(sa_dialect).bind_processor(sa_dialect)
        created: Any = process(now) if process is not None else now
    for start in range(0, len(keys), WRITE_BATCH):
        stop = min(start + WRITE_BATCH, len(keys))
        blobs = [buf[i * row_bytes : (i + 1) * row_bytes] for i in range(start, stop)]
        chunk = list(keys[start:stop])
        if dialect == "postgresql":
            # pipelined: BEGIN, SET and INSERT in one round trip
            with raw.pipeline(), raw.cursor() as cur:
                if start == 0:
                    # cache rows can always be recomputed: this transaction's commit need not
                    # wait for the WAL flush (a server crash may lose the last few commits;
                    # a killed job or API process loses nothing)
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                cur.execute(_PG_WRITE, (tenant_id, backbone_hash, dim, now, chunk, blobs))
        else:
            cur = raw.cursor()
            try:
                cur.executemany(
                    _SQLITE_WRITE,
                    [
                        (tenant_id, backbone_hash, k, dim, b, created)
                        for k, b in zip(chunk, blobs, strict=True)
                    ],
                )
            finally:
                cur.close()


def write_vectors(
    session: Session,
    tenant_id: str,
    backbone_hash: str,
    items: Iterable[tuple[str, np.ndarray]],
) -> None:
    """Insert (key, vector) pairs; rows another writer stored first are kept.

    Vectors of different dimensions may be mixed (each dimension is one bulk insert).
    """
    by_dim: dict[int, tuple[list[str], list[np.ndarray]]] = {}
    for key, vec in items:
        ks, vs = by_dim.setdefault(int(np.shape(vec)[0]), ([], []))
        ks.append(key)
        vs.append(vec)
    for ks, vs in by_dim.values():
        write_matrix(session, tenant_id, backbone_hash, ks, np.stack(vs))


def count_for_tenant(session: Session, tenant_id: str) -> int:
    return int(
        session.scalar(select(func.count()).where(CachedEmbedding.tenant_id == tenant_id)) or 0
    )


# --- dataset feature snapshots (table dataset_features) ---------------------------------------


def read_features(
    session: Session, dataset_id: str, backbone_hash: str, n: int, dim: int
) -> np.ndarray | None:
    """The dataset's (n, dim) features under ``backbone_hash`` in dataset order, or None
    when no complete snapshot of that dimension is stored."""
    key = {"dataset_id": dataset_id, "backbone_hash": backbone_hash}
    return read_blocks(session, "dataset_features", key, n, dim)


def write_features(session: Session, dataset_id: str, backbone_hash: str, x: np.ndarray) -> bool:
    """Store ``x`` (n, dim) as the dataset's snapshot under ``backbone_hash``, unless one is
    stored (of any size: the reader checks it). Returns whether it wrote. Give it a
    transaction of its own: when another writer inserts the same snapshot at the same time,
    the primary key fails this one's insert (IntegrityError), and its rollback leaves the
    other's."""
    found = session.scalar(
        select(func.count())
        .select_from(DatasetFeatures)
        .where(
            DatasetFeatures.dataset_id == dataset_id,
            DatasetFeatures.backbone_hash == backbone_hash,
        )
    )
    if found:
        return False
    dialect, raw = driver(session)
    if dialect == "postgresql":
        # a snapshot can always be rewritten from the cache: no need to wait for the WAL flush
        raw.execute("SET LOCAL synchronous_commit TO OFF")
    key = {"dataset_id": dataset_id, "backbone_hash": backbone_hash}
    write_blocks(session, "dataset_features", key, x)
    return True
