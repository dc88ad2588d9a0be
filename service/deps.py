"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth.service import tenant_for_key
from service.context import AppContext
from service.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer nmt_...`")


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def current_tenant(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if creds is None or not creds.credentials:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    ctx = get_ctx(request)
    with ctx.db.session() as s:
        tenant = tenant_for_key(s, creds.credentials)
    if tenant is None:
        raise Unauthorized("invalid or revoked API key")
    return tenant


Ctx = Annotated[AppContext, Depends(get_ctx)]
TenantId = Annotated[str, Depends(current_tenant)]
