"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from nmtune.service import __version__
from nmtune.service.audits.router import router as audits_router
from nmtune.service.auth.service import ensure_key
from nmtune.service.backbones.router import router as backbones_router
from nmtune.service.backbones.service import Warmup
from nmtune.service.composition import build_context
from nmtune.service.context import AppContext
from nmtune.service.datasets.router import VECTOR_UPLOAD_PATH
from nmtune.service.datasets.router import router as datasets_router
from nmtune.service.db import migrate
from nmtune.service.diagnostics.router import router as diagnostics_router
from nmtune.service.errors import install_error_handlers
from nmtune.service.heads.router import router as heads_router
from nmtune.service.jobs.router import router as jobs_router
from nmtune.service.ops.hygiene import InputHygiene
from nmtune.service.ops.middleware import LimitAndObserve
from nmtune.service.ops.redaction import install_redaction
from nmtune.service.ops.router import router as ops_router
from nmtune.service.ops.threads import set_this_thread
from nmtune.service.predictions.router import openai_router
from nmtune.service.predictions.router import router as predictions_router
from nmtune.service.settings import Settings, get_settings
from nmtune.service.ui.router import router as ui_router

log = logging.getLogger(__name__)

DESCRIPTION = """\
nmtune adapts frozen embedding backbones (remote embedding APIs or local models) to your
labelled data with small trained heads: a linear probe, an MLP, or NMTune (Chen et al.,
ICLR 2024), which regularises the feature spectrum for better out-of-domain transfer.

Flow: POST /v1/datasets -> POST /v1/heads (202 + job) -> GET /v1/jobs/{id} ->
POST /v1/heads/{id}/predict, GET /v1/heads/{id}/spectrum.

Every embedding is cached per tenant and backbone identity, so nothing is paid for twice.
Authenticate with `Authorization: Bearer <API key>` (created with `nmtune keys create`).
Every error has the body `{"error": Type, "detail": message, "field": path}`.
"""


class SchemaOutOfDate(RuntimeError):
    pass


#: What serve says (the app at start-up, the CLI before it) when the schema is behind.
SCHEMA_OUT_OF_DATE = (
    "the database schema is not at the latest migration: run `nmtune migrate` "
    "(or set NMTUNE_AUTO_MIGRATE=true)"
)


def prepare_database(ctx: AppContext) -> None:
    url = ctx.db.url
    if not migrate.is_up_to_date(ctx.db.engine, url):
        if not ctx.settings.auto_migrate:
            raise SchemaOutOfDate(SCHEMA_OUT_OF_DATE)
        migrate.upgrade(url)
    if ctx.settings.bootstrap_api_key is not None:
        with ctx.db.session() as s:
            ensure_key(s, "default", ctx.settings.bootstrap_api_key.get_secret_value())


def operation_id(route: APIRoute) -> str:
    """camelCase of the route function's name: create_head -> createHead (the OpenAPI
    operationId, hence the method name in generated clients)."""
    first, *rest = route.name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or (ctx.settings if ctx else get_settings())
    install_redaction(settings.secret_values())  # before anything can log

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ctx or build_context(settings)
        await asyncio.to_thread(prepare_database, context)  # SQL off the event loop
        set_this_thread(settings.serve_torch_threads)  # the request thread only
        app.state.ctx = context
        await context.runner.start()
        warmup = Warmup()
        app.state.warmup = warmup
        warm_task = (
            asyncio.create_task(warmup.run(context.registry)) if settings.warm_backbones else None
        )
        log.info(
            "nmtune ready",
            extra={"runner": settings.runner, "backbones": ",".join(context.registry.names())},
        )
        try:
            yield
        finally:
            if warm_task is not None and not warm_task.done():
                warm_task.cancel()
            await context.aclose()

    app = FastAPI(
        title="nmtune",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_tags=[
            {
                "name": "datasets",
                "description": "Labelled data with train/validation/test/OOD splits.",
            },
            {"name": "heads", "description": "Train and manage heads."},
            {"name": "jobs", "description": "Background work: status, progress, cancel, events."},
            {"name": "predictions", "description": "Serve a trained head."},
            {
                "name": "openai",
                "description": "OpenAI-compatible serving: `model` is a head id.",
            },
            {"name": "diagnostics", "description": "Singular value spectra, SVE, LSVR."},
            {"name": "backbones", "description": "Configured embedding backbones."},
            {"name": "ops", "description": "Health, readiness, metrics."},
        ],
    )
    install_error_handlers(app)
    for r in (
        datasets_router,
        audits_router,
        heads_router,
        predictions_router,
        openai_router,
        jobs_router,
        diagnostics_router,
        backbones_router,
        ops_router,
        ui_router,
    ):
        app.include_router(r)
    app.add_middleware(InputHygiene)  # inside the limit: NUL / lone surrogates -> 422 / 404
    app.add_middleware(
        LimitAndObserve,
        max_bytes=settings.max_request_bytes,
        body_timeout_s=settings.request_body_timeout_s,
        path_limits={VECTOR_UPLOAD_PATH: settings.max_vector_upload_bytes},
    )
    return app
