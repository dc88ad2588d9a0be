"""The cache's bulk SQL paths give what the one-row-at-a-time ORM gives, on both databases."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text

from nmtune.adapters import identity_digest
from nmtune.service.auth.service import get_or_create_tenant
from nmtune.service.db.base import utcnow
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.embeddings import repository as repo
from nmtune.service.embeddings.models import CachedEmbedding
from nmtune.service.embeddings.service import EmbeddingCache, input_sha256


def _tenants(db: Database) -> tuple[str, str]:
    with db.session() as s:
        a = get_or_create_tenant(s, f"a-{os.getpid()}-{time.time_ns()}").id
        b = get_or_create_tenant(s, f"b-{os.getpid()}-{time.time_ns()}").id
    return a, b


def _orm_rows(db: Database, tenant: str, bh: str) -> dict[str, tuple[int, bytes]]:
    with db.session() as s:
        rows = s.execute(
            select(CachedEmbedding.input_sha256, CachedEmbedding.dim, CachedEmbedding.vector).where(
                CachedEmbedding.tenant_id == tenant, CachedEmbedding.backbone_hash == bh
            )
        ).all()
    return {k: (d, bytes(v)) for k, d, v in rows}


def test_bulk_write_stores_what_the_orm_reads(any_db_url: str) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, other = _tenants(db)
    rng = np.random.default_rng(1)
    n = repo.WRITE_BATCH + 37  # more than one statement
    x = rng.normal(size=(n, 24)).astype(np.float32)
    keys = [f"{i:064x}" for i in range(n)]
    with db.session() as s:
        repo.write_matrix(s, tid, "b" * 64, keys, x)
    with db.session() as s:  # a second writer: kept rows, no error, no duplicates
        repo.write_matrix(s, tid, "b" * 64, keys[:10], np.zeros((10, 24), np.float32))
    stored = _orm_rows(db, tid, "b" * 64)
    assert len(stored) == n
    for i in (0, 9, 10, n - 1):
        dim, blob = stored[keys[i]]
        assert dim == 24 and blob == x[i].astype("<f4").tobytes()
    assert _orm_rows(db, other, "b" * 64) == {}
    with db.session() as s:
        created = s.scalar(
            select(CachedEmbedding.created_at).where(CachedEmbedding.tenant_id == tid).limit(1)
        )
    assert created is not None and abs((utcnow() - created).total_seconds()) < 600
    if any_db_url.startswith("sqlite"):  # the text the ORM writes, not sqlite3's isoformat
        with db.session() as s:
            s.add(
                CachedEmbedding(
                    tenant_id=tid,
                    backbone_hash="o" * 64,
                    input_sha256="o",
                    dim=1,
                    vector=b"\0\0\0\0",
                )
            )
        with db.session() as s:
            texts = s.execute(
                text("SELECT backbone_hash, created_at FROM embeddings WHERE tenant_id = :t"),
                {"t": tid},
            ).all()
        pattern = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        assert {bh[0] for bh, _ in texts} == {"b", "o"}
        assert all(pattern.fullmatch(t) for _, t in texts), {t for _, t in texts}
    db.dispose()


def test_bulk_read_returns_what_the_orm_wrote_in_key_order(any_db_url: str) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, other = _tenants(db)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    keys = [input_sha256(f"text {i}") for i in range(300)]
    with db.session() as s:  # the one-row-at-a-time path
        for k, v in zip(keys, x, strict=True):
            s.add(
                CachedEmbedding(
                    tenant_id=tid, backbone_hash="b" * 64, input_sha256=k, dim=8, vector=v.tobytes()
                )
            )
        # a row of another dimension under the same backbone hash: ignored as if missing
        s.add(
            CachedEmbedding(
                tenant_id=tid,
                backbone_hash="b" * 64,
                input_sha256="odd",
                dim=3,
                vector=np.ones(3, np.float32).tobytes(),
            )
        )
    ask: Sequence[str] = [keys[5], "nope", keys[2], keys[5], "odd", *keys[100:], "gone"]
    with db.session() as s:
        pos, vec = repo.read_matrix(s, tid, "b" * 64, ask, dim=8)
        assert repo.read_matrix(s, other, "b" * 64, ask)[0].size == 0
        assert repo.read_matrix(s, tid, "c" * 64, ask)[0].size == 0
        as_dict = repo.read_vectors(s, tid, "b" * 64, ask[:4])
    want = [i for i, k in enumerate(ask) if k in set(keys)]
    np.testing.assert_array_equal(pos, want)
    assert vec.dtype == np.float32 and vec.shape == (len(want), 8)
    lookup = dict(zip(keys, x, strict=True))
    for p, row in zip(pos, vec, strict=True):
        np.testing.assert_array_equal(row, lookup[ask[int(p)]])
    assert set(as_dict) == {keys[5], keys[2]}
    np.testing.assert_array_equal(as_dict[keys[2]], x[2])
    db.dispose()


def test_read_matrix_spans_several_statements(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, _ = _tenants(db)
    x = np.arange(50 * 4, dtype=np.float32).reshape(50, 4)
    keys = [f"k{i:03d}" for i in range(50)]
    with db.session() as s:
        repo.write_matrix(s, tid, "b" * 64, keys, x)
    monkeypatch.setattr(repo, "READ_BATCH", 7)
    ask = [*reversed(keys), "missing"]
    with db.session() as s:
        pos, vec = repo.read_matrix(s, tid, "b" * 64, ask)
    np.testing.assert_array_equal(pos, np.arange(50))
    np.testing.assert_array_equal(vec, x[::-1])
    db.dispose()


class _Backend:
    """A deterministic backend that counts what it was asked to embed."""

    name = "bulk"
    modality = "text"
    identity = "test:bulk:v1"
    dim = 6

    def __init__(self) -> None:
        from nmtune.adapters import Usage

        self.seen: list[str] = []
        self.usage = Usage()

    async def ensure_ready(self) -> None:
        return None

    async def embed(self, inputs: Sequence[str]) -> np.ndarray:
        self.seen.extend(inputs)
        return np.stack([self.vec(t) for t in inputs])

    @staticmethod
    def vec(text: str) -> np.ndarray:
        seed = int(input_sha256(text)[:8], 16)
        return np.random.default_rng(seed).normal(size=6).astype(np.float32)


def test_cache_embed_orders_dedupes_and_only_embeds_misses(any_db_url: str) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, other = _tenants(db)
    cache = EmbeddingCache(db, chunk_size=4)
    backend = _Backend()
    texts = [f"t{i}" for i in range(10)]
    first = asyncio.run(cache.embed(tid, backend, texts[:6]))  # type: ignore[arg-type]
    assert backend.seen == texts[:6]
    backend.seen.clear()
    asked = ["t3", "t9", "t0", "t9", "t7", "t3"]
    out = asyncio.run(cache.embed(tid, backend, asked))  # type: ignore[arg-type]
    assert backend.seen == ["t9", "t7"]  # only the misses, once each
    assert out.dtype == np.float32 and out.shape == (6, 6)
    for row, t in zip(out, asked, strict=True):
        np.testing.assert_array_equal(row, _Backend.vec(t))
    np.testing.assert_array_equal(first[3], out[0])
    got = asyncio.run(cache.cached(tid, backend.identity, [input_sha256(t) for t in asked]))
    assert got is not None
    np.testing.assert_array_equal(got, out)
    assert asyncio.run(cache.cached(tid, backend.identity, [input_sha256("t8")])) is None
    assert asyncio.run(cache.cached(other, backend.identity, [input_sha256("t3")])) is None
    with db.session() as s:
        n = len(
            repo.read_vectors(
                s, tid, identity_digest(backend.identity), [input_sha256(t) for t in texts]
            )
        )
    assert n == 8
    db.dispose()


def test_pg_read_probes_the_key_index_whatever_the_statistics(pg_url: str) -> None:
    """The read is one primary-key probe per key. Planned as a plain join on a table written
    faster than ANALYZE runs, the key was a join filter and the key array was scanned once
    per stored row of the tenant and backbone (minutes for 100k rows and 20k keys)."""
    upgrade(pg_url)
    db = Database(pg_url)
    tid, _ = _tenants(db)
    keys = [f"{i:064x}" for i in range(3000)]
    with db.session() as s:
        repo.write_matrix(s, tid, "p" * 64, keys, np.ones((3000, 4), np.float32))
    with db.session() as s:
        raw = s.connection().connection.driver_connection
        plan = raw.execute(
            "EXPLAIN (FORMAT JSON) " + repo._PG_READ, (keys[:200], tid, "p" * 64)
        ).fetchone()[0]

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    scans = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == "embeddings"]
    assert scans and all("input_sha256" in n.get("Index Cond", "") for n in scans), plan
    db.dispose()
