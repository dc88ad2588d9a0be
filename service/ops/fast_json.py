"""A route class whose JSON bodies are decoded by pydantic-core's parser.

FastAPI decodes a JSON body with Starlette's ``Request.json`` (the standard library's
``json.loads``) and only then validates it. For a predict body of floats (8 x 384) the
decoding is most of the request's parsing time; pydantic-core's ``from_json`` decodes the
same bytes to the same Python objects about five times faster. Whatever it refuses (invalid
JSON, a BOM or UTF-16, a lone surrogate escape, nesting deeper than its limit) is decoded by
``json.loads`` as before, so every body gets the result, or the error, it got before: one
decoder's answer is only ever replaced by an identical one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import Response


def decode_json(body: bytes) -> Any:
    """``json.loads(body)``, faster where pydantic-core's parser takes the body."""
    try:
        return from_json(body)
    except ValueError:
        return json.loads(body)  # Starlette's own decoding: its result, or its error


class FastJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class FastJSONRoute(APIRoute):
    """``APIRouter(route_class=FastJSONRoute)``: its routes decode JSON with ``decode_json``;
    validation, errors and the OpenAPI schema are FastAPI's own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return route
