"""The `embed` job kind: embed one split of a dataset (or all of it) through the cache, so
that GET /v1/datasets/{id}/spectrum can answer from cached vectors. Registered for
``JobKind.EMBED`` by the composition root."""

from __future__ import annotations

import asyncio
from typing import Any

from nmtune.adapters import BackendRegistry
from nmtune.service.datasets.service import load_examples
from nmtune.service.db.session import Database
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.jobs.handlers import JobContext


class EmbedJob:
    def __init__(self, db: Database, registry: BackendRegistry, cache: EmbeddingCache) -> None:
        self.db = db
        self.registry = registry
        self.cache = cache

    async def __call__(self, jc: JobContext) -> dict[str, Any]:
        job = jc.job
        assert job.dataset_id is not None
        split = jc.params.get("split")
        ex = await asyncio.to_thread(
            load_examples, self.db, job.dataset_id, [split] if split else None
        )
        x = await self.cache.embed(
            job.tenant_id,
            self.registry.get(jc.params["backbone"]),
            ex.inputs,
            keys=ex.keys,
            on_progress=jc.embed_progress,
            should_cancel=jc.cancel_requested,
        )
        return {"n_embedded": int(x.shape[0]), "dim": int(x.shape[1]) if x.ndim == 2 else 0}
