"""The composition root: builds the AppContext for the API and for a worker, and registers
one handler per job kind. The only module that wires domains into the generic job engine;
a new job kind is one ``handlers.register(...)`` line here (docs/architecture.md)."""

from __future__ import annotations

import nmtune.service.models  # noqa: F401  (every model mapped: foreign keys resolve)
from nmtune.adapters import BackendRegistry
from nmtune.service.audits.audit_job import AuditJob
from nmtune.service.audits.service import on_audit_job_ended
from nmtune.service.context import AppContext
from nmtune.service.db.session import Database
from nmtune.service.diagnostics.embed_job import EmbedJob
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.heads.service import on_train_job_ended
from nmtune.service.heads.training import TrainJob
from nmtune.service.jobs.celery import CeleryRunner
from nmtune.service.jobs.engine import JobEngine
from nmtune.service.jobs.handlers import JobHandlers
from nmtune.service.jobs.models import JobKind
from nmtune.service.jobs.runner import InlineRunner, JobQueue, JobRunner
from nmtune.service.ops.quotas import StreamSlots, TenantRateLimiter
from nmtune.service.predictions.cache import HeadCache
from nmtune.service.settings import Settings
from nmtune.service.ttl_cache import TTLCache


def job_handlers(
    db: Database, registry: BackendRegistry, cache: EmbeddingCache, settings: Settings
) -> JobHandlers:
    handlers = JobHandlers()
    handlers.register(
        JobKind.TRAIN, TrainJob(db, registry, cache, settings), on_terminal=on_train_job_ended
    )
    handlers.register(JobKind.EMBED, EmbedJob(db, registry, cache))
    handlers.register(
        JobKind.AUDIT, AuditJob(db, registry, cache, settings), on_terminal=on_audit_job_ended
    )
    return handlers


def build_context(
    settings: Settings, db: Database | None = None, registry: BackendRegistry | None = None
) -> AppContext:
    """Everything one process needs (API or worker): one Database, one registry."""
    db = db or Database(settings.database_url.get_secret_value())
    registry = registry or BackendRegistry.from_specs(settings.backbones)
    cache = EmbeddingCache(
        db,
        chunk_size=settings.embed_chunk_size,
        batch_budget_s=settings.embed_batch_budget_ms / 1000,
        snapshots=settings.feature_snapshots,
    )
    handlers = job_handlers(db, registry, cache, settings)
    engine = JobEngine(db, handlers, settings)
    runner: JobRunner
    if settings.runner == "celery":
        runner = CeleryRunner(settings, db)
    else:
        runner = InlineRunner(db, engine, settings)
    return AppContext(
        settings=settings,
        db=db,
        registry=registry,
        cache=cache,
        head_cache=HeadCache(settings.head_cache_size, settings.auth_cache_ttl_s),
        tenants=TTLCache(10_000, settings.auth_cache_ttl_s),
        handlers=handlers,
        engine=engine,
        runner=runner,
        queue=JobQueue(runner, db, settings.max_jobs_per_tenant),
        limiter=TenantRateLimiter(settings),
        streams=StreamSlots(settings.max_streams_per_tenant),
    )
