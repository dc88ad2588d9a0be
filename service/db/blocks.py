"""Matrices stored as blocks of rows: one SQL row per ~4 MiB of little-endian float32.

A block table has the columns of its key (e.g. ``dataset_id``), then ``chunk`` (0, 1, ...),
``start`` (the block's first matrix row), ``n_rows`` and ``data`` (``n_rows * dim`` float32,
row-major). Vector datasets (``dataset_vectors``) and dataset feature snapshots
(``dataset_features``) are such tables.

Both directions go through the driver's own connection in the Session's transaction: on
PostgreSQL the blobs are sent and fetched in binary format (text-format ``bytea`` is hex:
twice the bytes, and decoding it cost 2-4x the read time, benchmarks/results/perf.md section
4), on SQLite through sqlite3's cursor. Reads fill one preallocated (n, dim) array block by
block, so peak memory is the matrix plus a few blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

#: bytes of float32 per block row
BLOCK_BYTES = 4 * 1024 * 1024


def driver(session: Session) -> tuple[str, Any]:
    """(dialect name, the DB-API driver connection) of the Session's transaction."""
    conn = session.connection()
    return conn.dialect.name, conn.connection.driver_connection


def rows_per_block(dim: int) -> int:
    return max(1, BLOCK_BYTES // (4 * max(1, dim)))


def write_blocks(session: Session, table: str, key: Mapping[str, Any], x: np.ndarray) -> int:
    """Insert ``x`` (n, dim) as blocks under ``key`` (column -> value); returns the blocks.

    ``table`` and the key's column names are the caller's constants, never user input.
    A primary-key conflict raises SQLAlchemy's ``IntegrityError`` (without the parameters).
    """
    if x.ndim != 2:
        raise ValueError(f"blocks hold a (n, dim) matrix, got shape {x.shape}")
    n, dim = (int(v) for v in x.shape)
    per = rows_per_block(dim)
    cols = [*key, "chunk", "start", "n_rows", "data"]
    dialect, raw = driver(session)
    mark = "%s" if dialect == "postgresql" else "?"
    marks = [mark] * (len(cols) - 1) + ["%b" if dialect == "postgresql" else "?"]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(marks)})"
    values = list(key.values())
    # the driver's own error class (raw cursors bypass SQLAlchemy's wrapping)
    driver_integrity = session.get_bind().dialect.loaded_dbapi.IntegrityError
    blocks = 0
    cur = raw.cursor()
    try:
        for chunk, start in enumerate(range(0, n, per)):
            part = np.ascontiguousarray(x[start : start + per], dtype="<f4")
            cur.execute(sql, (*values, chunk, start, int(part.shape[0]), part.tobytes()))
            blocks += 1
    except driver_integrity as exc:  # e.g. another writer stored the same key first
        raise IntegrityError(sql, None, exc) from exc
    finally:
        cur.close()
    return blocks


def read_blocks(
    session: Session, table: str, key: Mapping[str, Any], n: int, dim: int
) -> np.ndarray | None:
    """The (n, dim) float32 matrix stored under ``key``, or None unless its blocks are
    exactly rows 0..n-1 of that dimension (none stored, a partial write, another dim)."""
    where = " AND ".join(f"{c} = {{m}}" for c in key)
    sql = f"SELECT start, n_rows, data FROM {table} WHERE {where} ORDER BY chunk"
    dialect, raw = driver(session)
    out = np.empty((n, dim), dtype=np.float32)
    filled = 0
    if dialect == "postgresql":
        # a server-side cursor, a few blocks per round trip: libpq never holds the whole result
        cur = raw.cursor(name="read_blocks", binary=True)
        cur.itersize = 8
        cur.execute(sql.format(m="%s"), tuple(key.values()))
    else:
        cur = raw.cursor()
        cur.execute(sql.format(m="?"), tuple(key.values()))
    try:
        for start, n_rows, data in cur:
            if start != filled or len(data) != 4 * dim * n_rows or filled + n_rows > n:
                return None
            out[start : start + n_rows] = np.frombuffer(data, dtype="<f4").reshape(n_rows, dim)
            filled += n_rows
    finally:
        cur.close()
    return out if filled == n else None
