"""Dataset feature snapshots (table dataset_features) and the block storage under them, on
both databases: what is written is what is read, a partial or foreign snapshot is never
used, the snapshot spares the per-key cache and the backbone, and it goes with its dataset."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from nmtune.adapters import identity_digest
from nmtune.service.datasets.models import Dataset
from nmtune.service.db import blocks
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.embeddings import repository as repo
from nmtune.service.embeddings.models import CachedEmbedding, DatasetFeatures
from nmtune.service.embeddings.service import EmbeddingCache, input_sha256
from nmtune.service.ops import metrics
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job
from tests.service.test_cache_bulk import _Backend, _tenants


def _dataset(db: Database, tenant: str, n: int) -> str:
    with db.session() as s:
        ds = Dataset(
            id=f"ds_{tenant[-12:]}_{n}",
            tenant_id=tenant,
            name="snap",
            modality="text",
            label_kind="str",
            n_examples=n,
            counts={},
        )
        s.add(ds)
    return ds.id


def _snapshot_rows(db: Database, dataset_id: str) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(DatasetFeatures)
                .where(DatasetFeatures.dataset_id == dataset_id)
            )
            or 0
        )


def test_blocks_round_trip_and_refuse_what_is_not_the_whole_matrix(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, _ = _tenants(db)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 7 * 4 * 5)  # 7 rows of 5 floats per block
    x = np.random.default_rng(0).normal(size=(23, 5)).astype(np.float32)
    ds = _dataset(db, tid, 23)
    key = {"dataset_id": ds, "backbone_hash": "h" * 64}
    with db.session() as s:
        assert blocks.write_blocks(s, "dataset_features", key, x) == 4  # 7 + 7 + 7 + 2
    with db.session() as s:
        got = blocks.read_blocks(s, "dataset_features", key, 23, 5)
    assert got is not None and got.dtype == np.float32
    np.testing.assert_array_equal(got, x)
    with db.session() as s:  # another size or dimension than stored: not this matrix
        assert blocks.read_blocks(s, "dataset_features", key, 24, 5) is None
        assert blocks.read_blocks(s, "dataset_features", key, 22, 5) is None
        assert blocks.read_blocks(s, "dataset_features", key, 23, 4) is None
        other = {"dataset_id": ds, "backbone_hash": "g" * 64}
        assert blocks.read_blocks(s, "dataset_features", other, 23, 5) is None
    with db.session() as s:  # a block missing in the middle: refused, not filled with junk
        s.execute(
            delete(DatasetFeatures).where(
                DatasetFeatures.dataset_id == ds, DatasetFeatures.chunk == 1
            )
        )
    with db.session() as s:
        assert blocks.read_blocks(s, "dataset_features", key, 23, 5) is None
    db.dispose()


def test_embed_dataset_stores_a_snapshot_and_reads_it_without_the_cache(any_db_url: str) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, _ = _tenants(db)
    cache = EmbeddingCache(db, chunk_size=4)
    backend: Any = _Backend()
    texts = [f"s{i}" for i in range(9)] + ["s0"]  # a duplicate text: its own row
    keys = [input_sha256(t) for t in texts]
    ds = _dataset(db, tid, len(texts))

    # a subset of the rows with no snapshot yet: per-key cache, no snapshot written
    part = asyncio.run(
        cache.embed_dataset(tid, (ds, 10), backend, texts[2:5], keys=keys[2:5], positions=[2, 3, 4])
    )
    np.testing.assert_array_equal(part, np.stack([_Backend.vec(t) for t in texts[2:5]]))
    assert _snapshot_rows(db, ds) == 0

    first = asyncio.run(cache.embed_dataset(tid, (ds, 10), backend, texts, keys=keys))
    assert sorted(backend.seen) == sorted(set(texts))  # each text paid for once
    np.testing.assert_array_equal(first, np.stack([_Backend.vec(t) for t in texts]))
    assert _snapshot_rows(db, ds) == 1

    # the per-key rows gone: the snapshot alone answers, and the backbone is not called
    with db.session() as s:
        s.execute(delete(CachedEmbedding).where(CachedEmbedding.tenant_id == tid))
    backend.seen.clear()
    reads = metrics.SNAPSHOT_READS._value.get()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    again = asyncio.run(
        cache.embed_dataset(tid, (ds, 10), backend, texts, keys=keys, on_progress=on_progress)
    )
    np.testing.assert_array_equal(again, first)
    assert backend.seen == [] and metrics.SNAPSHOT_READS._value.get() == reads + 1
    assert progress == [(10, 10)]
    rows = asyncio.run(
        cache.embed_dataset(tid, (ds, 10), backend, texts[7:], keys=keys[7:], positions=[7, 8, 9])
    )
    np.testing.assert_array_equal(rows, first[7:])
    assert backend.seen == []

    # a second writer of the same snapshot: kept as it is, nothing written
    with db.session() as s:
        assert not repo.write_features(s, ds, identity_digest(backend.identity), first * 0)
    with db.session() as s:
        kept = repo.read_features(s, ds, identity_digest(backend.identity), 10, 6)
    np.testing.assert_array_equal(kept, first)

    # the snapshot goes with its dataset
    with db.session() as s:
        s.delete(s.get(Dataset, ds))
    assert _snapshot_rows(db, ds) == 0
    db.dispose()


def test_snapshots_off_neither_writes_nor_reads(any_db_url: str) -> None:
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, _ = _tenants(db)
    backend: Any = _Backend()
    texts = [f"o{i}" for i in range(5)]
    keys = [input_sha256(t) for t in texts]
    ds = _dataset(db, tid, 5)
    off = EmbeddingCache(db, snapshots=False)
    asyncio.run(off.embed_dataset(tid, (ds, 5), backend, texts, keys=keys))
    assert _snapshot_rows(db, ds) == 0
    x = asyncio.run(EmbeddingCache(db).embed_dataset(tid, (ds, 5), backend, texts, keys=keys))
    assert _snapshot_rows(db, ds) == 1  # on: written
    with db.session() as s:
        s.execute(delete(CachedEmbedding).where(CachedEmbedding.tenant_id == tid))
    backend.seen.clear()
    again = asyncio.run(off.embed_dataset(tid, (ds, 5), backend, texts, keys=keys))
    assert backend.seen == texts  # off: the stored snapshot is not read either
    np.testing.assert_array_equal(again, x)
    assert asyncio.run(off.cached_dataset(tid, (ds, 5), backend, keys, list(range(5)))) is not None
    with db.session() as s:
        s.execute(delete(CachedEmbedding).where(CachedEmbedding.tenant_id == tid))
    assert asyncio.run(off.cached_dataset(tid, (ds, 5), backend, keys, list(range(5)))) is None
    db.dispose()


def test_concurrent_snapshot_writers_leave_the_first_one(
    any_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two jobs embedding the same dataset at once: the second writer waits for the first
    one's transaction, fails on the primary key, and leaves the first snapshot (no error)."""
    upgrade(any_db_url)
    db = Database(any_db_url)
    tid, _ = _tenants(db)
    ds = _dataset(db, tid, 10)
    cache = EmbeddingCache(db)
    first, second = np.ones((10, 6), np.float32), np.zeros((10, 6), np.float32)
    holder = db.factory()
    assert repo.write_features(holder, ds, "h" * 64, first)  # not committed yet
    other = threading.Thread(target=cache._write_features, args=(ds, "h" * 64, second))
    other.start()
    time.sleep(0.5)
    assert other.is_alive()  # waiting for the first writer
    holder.commit()
    holder.close()
    other.join(30)
    assert not other.is_alive()
    with db.session() as s:
        kept = repo.read_features(s, ds, "h" * 64, 10, 6)
    np.testing.assert_array_equal(kept, first)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # an expected race
    db.dispose()


def test_second_head_reads_the_snapshot(serve: Any, fake_upstream: FakeOpenAIServer) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    recs = sentiment_records(10)
    ds = c.post("/v1/datasets", json={"name": "snap", "records": recs}).json()
    fake_upstream.reset()
    first = post_head(c, ds["id"], "lp", lp_epochs=2)
    assert wait_job(c, first["job"]["id"])["status"] == "succeeded"
    assert _snapshot_rows(run.db, ds["id"]) >= 1
    n_calls = fake_upstream.request_count
    reads = metrics.SNAPSHOT_READS._value.get()
    second = post_head(c, ds["id"], "lr")
    assert wait_job(c, second["job"]["id"])["status"] == "succeeded"
    assert fake_upstream.request_count == n_calls
    assert metrics.SNAPSHOT_READS._value.get() == reads + 1

    # with the per-key rows gone, the dataset's split spectrum is still answered at once,
    # from the snapshot, with no job and no backbone call
    spec = {"split": "train", "backbone": "fake"}
    from_cache = c.get(f"/v1/datasets/{ds['id']}/spectrum", params=spec)
    assert from_cache.status_code == 200, from_cache.text
    with run.db.session() as s:
        s.execute(delete(CachedEmbedding))
    spec["center"] = "false"  # other options: not the memoised answer
    from_snapshot = c.get(f"/v1/datasets/{ds['id']}/spectrum", params=spec)
    assert from_snapshot.status_code == 200, from_snapshot.text
    assert from_snapshot.json()["spectrum"]["n_samples"] == 16
    assert fake_upstream.request_count == n_calls


def test_setting_off_stores_no_snapshot(serve: Any, fake_upstream: FakeOpenAIServer) -> None:
    run = serve(None, [fake_spec(fake_upstream)], feature_snapshots=False)
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "off", "records": sentiment_records(6)}).json()
    head = post_head(c, ds["id"], "lr")
    assert wait_job(c, head["job"]["id"])["status"] == "succeeded"
    assert _snapshot_rows(run.db, ds["id"]) == 0


def test_sqlite_wal_is_cut_back_after_a_large_snapshot(tmp_path: Path) -> None:
    """A 300 MB snapshot grew the WAL to 295 MB, which stayed on disk; with the limit the
    log is cut back to 64 MiB when it restarts (measured, perf.md section 4)."""
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with db.session() as s:
        assert s.connection().exec_driver_sql("PRAGMA journal_size_limit").scalar() == 2**26
    db.dispose()
