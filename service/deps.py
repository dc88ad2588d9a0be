"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nmtune.service.auth.service import hash_key, tenant_for_key
from nmtune.service.context import AppContext
from nmtune.service.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer nmt_...`")


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def current_tenant(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant of the bearer key (lookups cached for `auth_cache_ttl_s` seconds), after
    the tenant's request rate limit (`rate_limit`)."""
    if creds is None or not creds.credentials:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    ctx = get_ctx(request)
    digest = hash_key(creds.credentials)
    tenant = ctx.tenants.get(digest)
    if tenant is None:

        def _lookup() -> str | None:
            with ctx.db.session() as s:
                return tenant_for_key(s, creds.credentials)

        tenant = await to_thread.run_sync(_lookup)
        if tenant is None:
            raise Unauthorized("invalid or revoked API key")
        ctx.tenants.put(digest, tenant)
    await ctx.limiter.hit(tenant)  # 429 + Retry-After over the tenant's rate limit
    return tenant


async def _ctx(request: Request) -> AppContext:
    """``get_ctx`` as an async dependency: FastAPI runs a plain ``def`` dependency in its
    threadpool, a thread hop on every request for one attribute read."""
    return get_ctx(request)


Ctx = Annotated[AppContext, Depends(_ctx)]
TenantId = Annotated[str, Depends(current_tenant)]
