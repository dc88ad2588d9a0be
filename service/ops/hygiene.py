"""Input hygiene for every route, before any handler runs: strings no database can store.

A lone UTF-16 surrogate (``"\\ud800"`` in JSON) cannot be encoded as UTF-8 and a NUL
character cannot be stored by PostgreSQL; either used to end as a 500 somewhere deep (a hash,
a bind parameter). Here they are refused up front, with the JSON path of the first culprit:

- a JSON body (``application/json`` or ``+json``) holding such a string, as a value or a
  key -> 422 ``ValidationError`` with ``field`` (``records[3].text``);
- a query parameter holding a NUL -> 422 with the parameter's name as ``field``;
- a path holding a NUL -> 404 (no object has such an id).

The body is scanned as bytes first (one regex over the raw JSON, looking for the escapes
``\\u0000`` and ``\\ud800``-``\\udfff``), and only parsed when the scan finds one, so clean
requests pay one pass over their bytes. Multipart uploads are checked by the dataset
validation (``service.datasets.validation``), which applies the same rules per field.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def bad_char(value: str) -> str | None:
    """What is wrong with ``value``, or None: a NUL or a lone surrogate."""
    m = _BAD_CHAR.search(value)
    if m is None:
        return None
    return "a NUL character" if m.group() == "\x00" else "a lone UTF-16 surrogate"


def first_bad(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        why = bad_char(value)
        return (path, why) if why else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = first_bad(item, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, dict):
        for k, item in value.items():
            where = f"{path}.{k}" if path else str(k)
            why = bad_char(k)
            if why:
                return where, f"{why} in a key"
            found = first_bad(item, where)
            if found:
                return found
    return None


def find_bad_string(body: bytes) -> tuple[str, str] | None:
    """(field path, reason) of the first bad string in a JSON body, else None."""
    if not _SUSPECT.search(body):
        return None
    try:
        data = json.loads(body)
    except ValueError:  # not JSON: the route reports that
        return None
    return first_bad(data, "")


async def _reject(send: Send, status: int, error: str, detail: str, field: str | None) -> None:
    body = json.dumps({"error": error, "detail": detail, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InputHygiene:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await _reject(send, 404, "NotFound", "no such resource (the path holds a NUL)", None)
            return
        raw_qs = scope.get("query_string", b"")
        if raw_qs and (b"%00" in raw_qs or b"\x00" in raw_qs):
            for name, value in parse_qsl(raw_qs.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    field = name.replace("\x00", "") or "query"
                    await _reject(
                        send,
                        422,
                        "ValidationError",
                        f"{field}: query parameter holds a NUL character",
                        field,
                    )
                    return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not (ctype == b"application/json" or ctype.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # disconnected while sending
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        bad = find_bad_string(body)
        if bad is not None:
            field, why = bad
            await _reject(send, 422, "ValidationError", f"{field}: holds {why}", field or None)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
