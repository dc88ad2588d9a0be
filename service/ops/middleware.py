"""ASGI middleware: request size limit (413 in the error envelope), metrics, access log."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.ops import metrics

log = logging.getLogger("nmtune.access")


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class _TooLarge(Exception):
    pass


def _envelope(status: int, error: str, detail: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": error, "detail": detail, "field": None}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, body


class LimitAndObserve:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            start, body = _envelope(
                413, "PayloadTooLarge", f"request body larger than {self.max_bytes} bytes"
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0
        started = False
        incoming = headers.get(b"x-request-id", b"")
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16].encode()

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return msg

        status = 500

        async def observed_send(msg: Message) -> None:
            nonlocal status, started
            if msg["type"] == "http.response.start":
                status = msg["status"]
                started = True
                msg["headers"] = [*msg.get("headers", []), (b"x-request-id", rid)]
            await send(msg)

        t0 = time.perf_counter()
        try:
            await self.app(scope, limited_receive, observed_send)
        except _TooLarge:
            status = 413
            if not started:
                start, body = _envelope(
                    413, "PayloadTooLarge", f"request body larger than {self.max_bytes} bytes"
                )
                await send(start)
                await send({"type": "http.response.body", "body": body})
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            dt = time.perf_counter() - t0
            metrics.REQUESTS.labels(scope["method"], path, str(status)).inc()
            metrics.LATENCY.labels(scope["method"], path).observe(dt)
            log.info(
                "request",
                extra={
                    "request_id": rid.decode(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(dt * 1000, 1),
                },
            )
