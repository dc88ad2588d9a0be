"""ASGI middleware: request size limit (413 in the error envelope), body read timeout (408),
metrics, access log."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nmtune.service.ops import metrics

log = logging.getLogger("nmtune.access")


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so that FastAPI's body parsing passes it on
    (413 in the envelope) instead of turning it into a 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class _BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


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
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        body_timeout_s: float = 60.0,
        path_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        #: exact paths with their own body limit (bulk binary uploads)
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            start, body = _envelope(
                413, "PayloadTooLarge", f"request body larger than {max_bytes} bytes"
            )
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0
        started = False
        body_done = False
        incoming = headers.get(b"x-request-id", b"")
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16].encode()
        deadline = time.monotonic() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # e.g. waiting for the disconnect during a stream: no timeout
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise _BodyTimeout(self.body_timeout_s) from None
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge(max_bytes)
                body_done = not msg.get("more_body", False)
            else:
                body_done = True
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
        except (_TooLarge, _BodyTimeout) as exc:  # raised outside FastAPI's body parsing
            status = exc.status_code
            if not started:
                name = "PayloadTooLarge" if status == 413 else "RequestTimeout"
                start, body = _envelope(status, name, str(exc.detail))
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
