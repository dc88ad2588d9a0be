"""The embedding cache: every embedding the service needs goes through here.

Only cache misses reach the backend; each backend batch is committed as soon as it
returns, so what was paid for survives a job that fails or is killed later. Whole datasets
also get a snapshot (their features as a few large blocks, in dataset order), which later
heads, audits and spectra of the dataset read instead of one cache row per vector.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
from sqlalchemy.exc import IntegrityError

from nmtune.adapters import EmbeddingBackend, InputPolicyError, Usage, identity_digest
from nmtune.service.db.session import Database
from nmtune.service.embeddings import repository as repo
from nmtune.service.embeddings.batching import DynamicBatcher, wants_batching
from nmtune.service.errors import WorkCancelled
from nmtune.service.ops import metrics

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], Awaitable[None]]
CancelFn = Callable[[], Awaitable[bool]]


def input_bytes(item: str | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.encode("utf-8")


def input_sha256(item: str | bytes) -> str:
    return hashlib.sha256(input_bytes(item)).hexdigest()


class EmbeddingCancelled(WorkCancelled):
    """Raised between backend batches when the caller asked to stop."""


class EmbeddingCache:
    """``batch_budget_s`` > 0: local backbones are dynamically batched across concurrent
    callers (service.embeddings.batching), each batch about that much model time.
    ``snapshots``: whole datasets' feature snapshots are written and read (see
    :meth:`embed_dataset`); off, every read is per key."""

    def __init__(
        self,
        db: Database,
        chunk_size: int = 256,
        batch_budget_s: float = 0.05,
        snapshots: bool = True,
    ) -> None:
        self.db = db
        self.chunk_size = chunk_size
        self.batch_budget_s = batch_budget_s
        self.snapshots = snapshots
        self._batchers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[int, DynamicBatcher]
        ] = weakref.WeakKeyDictionary()
        # per (tenant, backbone name), since this process started: what this tenant's work
        # cost at the backbone (tokens and retries are the backend's own counts during the
        # tenant's calls). GET /v1/backbones shows a tenant only its own.
        self.usage: dict[tuple[str, str], Usage] = {}

    def usage_of(self, tenant_id: str, backbone: str) -> Usage:
        return self.usage.get((tenant_id, backbone)) or Usage()

    def batcher(self, backend: EmbeddingBackend) -> DynamicBatcher | None:
        """This event loop's batcher of ``backend`` (None: the backend is called directly)."""
        if self.batch_budget_s <= 0 or not wants_batching(backend):
            return None
        per_loop = self._batchers.setdefault(asyncio.get_running_loop(), {})
        found = per_loop.get(id(backend))
        if found is None or found.backend is not backend:
            max_batch = int(getattr(backend, "batch_size", self.chunk_size))
            found = per_loop[id(backend)] = DynamicBatcher(backend, max_batch, self.batch_budget_s)
        return found

    async def embed(
        self,
        tenant_id: str,
        backend: EmbeddingBackend,
        inputs: Sequence[str | bytes],
        *,
        keys: Sequence[str] | None = None,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> np.ndarray:
        """Embed ``inputs`` (in order) through the cache. Returns float32 (n, dim)."""
        await backend.ensure_ready()
        bh = identity_digest(backend.identity)
        keys = list(keys) if keys is not None else [input_sha256(x) for x in inputs]
        first_index: dict[str, int] = {}
        for i, k in enumerate(keys):
            first_index.setdefault(k, i)
        unique = list(first_index)

        positions, vectors = await asyncio.to_thread(self._read, tenant_id, bh, unique, backend.dim)
        # one (n_unique, dim) array, filled from the cache and then batch by batch
        table = np.zeros((len(unique), backend.dim), dtype=np.float32)
        table[positions] = vectors
        have = np.zeros(len(unique), dtype=bool)
        have[positions] = True
        missing = np.flatnonzero(~have)
        metrics.CACHE_HITS.inc(int(positions.size))
        metrics.CACHE_MISSES.inc(int(missing.size))
        done = int(positions.size)
        if on_progress:
            await on_progress(done, len(unique))

        for start in range(0, len(missing), self.chunk_size):
            if should_cancel is not None and await should_cancel():
                raise EmbeddingCancelled()
            chunk = missing[start : start + self.chunk_size]
            chunk_keys = [unique[int(j)] for j in chunk]
            batch = [inputs[first_index[k]] for k in chunk_keys]
            mine = self.usage.setdefault((tenant_id, backend.name), Usage())
            before = backend.usage.to_dict()
            try:
                batcher = self.batcher(backend)
                got = await (batcher.embed(batch) if batcher else backend.embed(batch))  # type: ignore[arg-type]
            except InputPolicyError as exc:  # name the caller's input, not the chunk's
                mine.failures += 1
                raise InputPolicyError(exc.reason, first_index[chunk_keys[exc.index]]) from None
            except Exception:
                mine.failures += 1
                raise
            finally:
                after = backend.usage.to_dict()
                mine.requests += after["requests"] - before["requests"]
                mine.tokens += after["tokens"] - before["tokens"]
                mine.retries += after["retries"] - before["retries"]
            mine.inputs += len(batch)
            metrics.BACKEND_BATCHES.inc()
            vecs = np.asarray(got, dtype=np.float32)
            await asyncio.to_thread(self._write, tenant_id, bh, chunk_keys, vecs)
            table[chunk] = vecs
            done += len(chunk)
            if on_progress:
                await on_progress(done, len(unique))

        if not keys:
            return np.zeros((0, backend.dim), dtype=np.float32)
        if len(unique) == len(keys):  # no duplicates: the table is already in input order
            return table
        slot = {k: j for j, k in enumerate(unique)}
        return table[np.fromiter((slot[k] for k in keys), dtype=np.int64, count=len(keys))]

    async def embed_dataset(
        self,
        tenant_id: str,
        dataset: tuple[str, int],
        backend: EmbeddingBackend,
        inputs: Sequence[str | bytes],
        *,
        keys: Sequence[str],
        positions: Sequence[int] | None = None,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> np.ndarray:
        """A dataset's features (n, dim) in dataset order, through its snapshot.

        ``dataset`` is (id, n_examples) of one of ``tenant_id``'s datasets (the caller has
        checked). ``inputs`` / ``keys`` are its examples in order, or only those at
        ``positions`` (ascending), whose rows are then returned. When the dataset's snapshot
        under this backbone is stored (table ``dataset_features``), it is read in a few large
        rows and no per-key lookup is made. Otherwise the rows go through :meth:`embed`; when
        they were the whole dataset, they are then stored as its snapshot.
        """
        await backend.ensure_ready()
        x = await self._snapshot(dataset, backend, positions)
        if x is not None:
            metrics.CACHE_HITS.inc(int(x.shape[0]))
            if on_progress:
                await on_progress(int(x.shape[0]), int(x.shape[0]))
            return x
        x = await self.embed(
            tenant_id,
            backend,
            inputs,
            keys=keys,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        dataset_id, n_examples = dataset
        if self.snapshots and positions is None and x.shape[0] == n_examples and n_examples:
            bh = identity_digest(backend.identity)
            await asyncio.to_thread(self._write_features, dataset_id, bh, x)
        return x

    async def cached(self, tenant_id: str, identity: str, keys: Sequence[str]) -> np.ndarray | None:
        """The vectors (n, dim) for ``keys`` in order if every one is cached, else None."""
        first: dict[str, int] = {}
        for k in keys:
            first.setdefault(k, len(first))
        unique = list(first)
        positions, vectors = await asyncio.to_thread(
            self._read, tenant_id, identity_digest(identity), unique, None
        )
        if not keys or positions.size < len(unique):
            return None
        if len(unique) == len(keys):
            return vectors
        return vectors[np.fromiter((first[k] for k in keys), dtype=np.int64, count=len(keys))]

    async def cached_dataset(
        self,
        tenant_id: str,
        dataset: tuple[str, int],
        backend: EmbeddingBackend,
        keys: Sequence[str],
        positions: Sequence[int],
    ) -> np.ndarray | None:
        """The vectors of a dataset's rows at ``positions`` (their cache keys ``keys``) if all
        are stored, else None: from the dataset's snapshot when there is one (see
        :meth:`embed_dataset`), otherwise as :meth:`cached`. Never calls the backbone."""
        x = await self._snapshot(dataset, backend, positions) if len(keys) else None
        if x is not None:
            return x
        return await self.cached(tenant_id, backend.identity, keys)

    async def _snapshot(
        self, dataset: tuple[str, int], backend: EmbeddingBackend, positions: Sequence[int] | None
    ) -> np.ndarray | None:
        """The dataset's snapshot under ``backend`` (only the rows at ``positions`` when
        given), or None when snapshots are off or none is stored."""
        if not self.snapshots:
            return None
        dataset_id, n_examples = dataset
        bh = identity_digest(backend.identity)
        x = await asyncio.to_thread(self._read_features, dataset_id, bh, n_examples, backend.dim)
        if x is None:
            return None
        metrics.SNAPSHOT_READS.inc()
        return x if positions is None else x[np.asarray(positions, dtype=np.int64)]

    def _read(
        self, tenant_id: str, bh: str, keys: list[str], dim: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self.db.session() as s:
            return repo.read_matrix(s, tenant_id, bh, keys, dim)

    def _write(self, tenant_id: str, bh: str, keys: list[str], vectors: np.ndarray) -> None:
        with self.db.session() as s:
            repo.write_matrix(s, tenant_id, bh, keys, vectors)

    def _read_features(self, dataset_id: str, bh: str, n: int, dim: int) -> np.ndarray | None:
        with self.db.session() as s:
            return repo.read_features(s, dataset_id, bh, n, dim)

    def _write_features(self, dataset_id: str, bh: str, x: np.ndarray) -> None:
        try:
            with self.db.session() as s:
                wrote = repo.write_features(s, dataset_id, bh, x)
        except IntegrityError:  # another job stored the same snapshot first
            wrote = False
        except Exception:
            # the features are in hand and in the per-key cache: a later read falls back to it
            log.exception("dataset %s: its feature snapshot was not stored", dataset_id)
            return
        if wrote:
            log.info("dataset %s: feature snapshot stored (%d x %d)", dataset_id, *x.shape)
