"""Everything a request or a job needs, built once per process."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from adapters import BackendRegistry, EmbeddingBackend
from service.db.session import Database
from service.embeddings.service import EmbeddingCache
from service.errors import ServiceUnavailable
from service.jobs.executor import JobExecutor
from service.jobs.runner import InlineRunner, JobRunner
from service.predictions.service import HeadCache
from service.settings import Settings
from service.ttl_cache import TTLCache

log = logging.getLogger(__name__)


class AppContext:
    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        registry: BackendRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url.get_secret_value())
        self.registry = registry or BackendRegistry.from_specs(settings.backbones)
        self.cache = EmbeddingCache(self.db, chunk_size=settings.embed_chunk_size)
        self.executor = JobExecutor(self.db, self.registry, self.cache, settings)
        self.heads = HeadCache(settings.head_cache_size, settings.auth_cache_ttl_s)
        self.tenants: TTLCache[str, str] = TTLCache(10_000, settings.auth_cache_ttl_s)
        self.runner: JobRunner = self._make_runner()

    def _make_runner(self) -> JobRunner:
        if self.settings.runner == "celery":
            from service.jobs.celery_app import CeleryRunner

            return CeleryRunner(self.settings)
        return InlineRunner(self.db, self.executor, self.settings)

    async def embed(
        self,
        tenant_id: str,
        backend: EmbeddingBackend,
        inputs: Sequence[str | bytes],
        **kwargs: Any,
    ) -> np.ndarray:
        return await self.cache.embed(tenant_id, backend, inputs, **kwargs)

    async def runner_check(self) -> None:
        try:
            await self.runner.check()
        except Exception as exc:
            raise ServiceUnavailable(f"the job queue is unavailable: {exc}") from exc

    async def submit(self, job_id: str) -> None:
        try:
            await self.runner.submit(job_id)
        except Exception as exc:
            # the job row stays queued: the runner picks it up when it is back
            log.error("could not hand job %s to the runner: %s", job_id, exc)
            raise ServiceUnavailable(
                f"job {job_id} was stored but could not be queued now ({exc}); it will run "
                "when the queue is back"
            ) from exc

    async def aclose(self) -> None:
        await self.runner.stop()
        await self.registry.aclose()
        self.db.dispose()
