"""What a request or a job needs, built once per process by ``service.composition``.

Routers read their collaborators from here and hand them to the domain services
explicitly; no domain service receives the AppContext (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from nmtune.adapters import BackendRegistry
from nmtune.service.db.session import Database
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.jobs.handlers import JobHandlers
from nmtune.service.jobs.runner import JobQueue, JobRunner
from nmtune.service.ops.quotas import StreamSlots, TenantRateLimiter
from nmtune.service.predictions.cache import HeadCache
from nmtune.service.settings import Settings
from nmtune.service.ttl_cache import TTLCache


@dataclass
class AppContext:
    settings: Settings
    db: Database
    registry: BackendRegistry
    cache: EmbeddingCache  # the embedding cache (SQL)
    head_cache: HeadCache  # loaded heads (weights + row metadata) for predict
    tenants: TTLCache[str, str]  # API key digest -> tenant id
    handlers: JobHandlers  # job kind -> handler, terminal hook
    engine: JobEngine  # runs one job (inline runner and worker)
    runner: JobRunner
    queue: JobQueue  # the runner as domain services see it (+ the per-tenant job quota)
    limiter: TenantRateLimiter  # per-tenant request rate limit
    streams: StreamSlots  # per-tenant cap on concurrent event streams

    async def aclose(self) -> None:
        await self.runner.stop()
        await self.registry.aclose()
        self.db.dispose()
