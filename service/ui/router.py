"""GET /ui: the dashboard's static files. No API of its own: the pages call the public /v1
routes with the API key the user typed (kept in the browser's sessionStorage)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import RedirectResponse, Response

from nmtune.service.ui.service import read_asset

router = APIRouter(prefix="/ui", include_in_schema=False)

#: only the dashboard's own files run; nothing is fetched from another origin
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@router.get("")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/{path:path}")
def ui_file(path: str, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    asset = read_asset(path)
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if if_none_match == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
