"""The OpenAI-family backend against the fake server: recovery, fail-fast, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from nmtune.adapters import (
    AuthError,
    BadRequestError,
    BadResponseError,
    InputPolicyError,
    RateLimitedError,
    UnavailableError,
    build_backend,
)
from nmtune.adapters.openai_backend import OpenAIBackend
from tests.adapters.conftest import compat_spec
from tests.fakes.openai_server import FakeOpenAIServer, fake_vector

TEXTS = [f"text {i}" for i in range(10)]


def expected(texts: list[str], dim: int = 8) -> np.ndarray:
    return np.stack([fake_vector(t, dim) for t in texts])


_OPEN: list[OpenAIBackend] = []


def make(srv: FakeOpenAIServer, **kw: Any) -> OpenAIBackend:
    b = build_backend(compat_spec(srv.base_url, **kw))
    assert isinstance(b, OpenAIBackend)
    _OPEN.append(b)
    return b


@pytest.fixture(autouse=True)
async def _close_backends() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().aclose()


async def test_vectors_base64_and_float(fake_server: FakeOpenAIServer) -> None:
    for use_b64 in (True, False):
        b = make(fake_server, use_base64=use_b64)
        out = await b.embed(TEXTS)
        np.testing.assert_allclose(out, expected(TEXTS), rtol=1e-6)
    assert [r.encoding_format for r in fake_server.requests] == ["base64", "float"]
    assert fake_server.requests[0].authorization == "Bearer sk-test-SECRET-123"


async def test_dimensions_sent_and_checked(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server, dimensions=4)
    assert b.dim == 4
    out = await b.embed(TEXTS[:3])
    assert out.shape == (3, 4)
    assert fake_server.requests[0].dimensions == 4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


async def test_dim_probe_when_unknown(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server)
    with pytest.raises(Exception, match="ensure_ready"):
        _ = b.dim
    await b.ensure_ready()
    assert b.dim == 8


async def test_429_retry_after_is_honoured(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(429, headers={"retry-after": "0.3"}, times=1)
    b = make(fake_server)
    t0 = time.monotonic()
    out = await b.embed(TEXTS)
    assert time.monotonic() - t0 >= 0.29
    np.testing.assert_allclose(out, expected(TEXTS), rtol=1e-6)
    assert fake_server.request_count == 2
    assert b.usage.retries == 1 and b.usage.requests == 2


async def test_429_retry_after_ms(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(429, headers={"retry-after-ms": "50"}, times=2)
    b = make(fake_server)
    await b.embed(TEXTS)
    assert fake_server.request_count == 3


async def test_429_beyond_cap_raises_with_retry_after(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(429, headers={"retry-after": "120"}, times=1)
    b = make(fake_server, max_retry_after_s=60.0)
    with pytest.raises(RateLimitedError) as ei:
        await b.embed(TEXTS)
    assert ei.value.retry_after == 120.0
    assert fake_server.request_count == 1


async def test_long_retry_after_within_cap_is_waited(fake_server: FakeOpenAIServer) -> None:
    # above the SDK's 60 s ceiling is fine when under our cap; here we only check the decision
    b = make(fake_server, max_retry_after_s=3600.0)
    fake_server.inject(429, headers={"retry-after": "90"}, times=1)
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)

    b.sleep = fake_sleep
    await b.embed(TEXTS)
    assert slept == [90.0]
    assert fake_server.request_count == 2


async def test_5xx_recovers_then_gives_up(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(500, times=2)
    fake_server.inject(503, times=1)
    b = make(fake_server)
    np.testing.assert_allclose(await b.embed(TEXTS), expected(TEXTS), rtol=1e-6)
    assert fake_server.request_count == 4
    fake_server.reset()
    fake_server.inject(502, times=10)
    with pytest.raises(UnavailableError):
        await b.embed(TEXTS)
    assert fake_server.request_count == 1 + 4  # first try + max_retries


async def test_timeout_recovers(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(200, delay=1.0, times=1)
    b = make(fake_server, timeout_s=0.2)
    out = await b.embed(TEXTS)
    np.testing.assert_allclose(out, expected(TEXTS), rtol=1e-6)
    assert fake_server.request_count == 2


async def test_connection_error_is_unavailable() -> None:
    b = build_backend(compat_spec("http://127.0.0.1:9/v1", max_retries=1))
    with pytest.raises(UnavailableError):
        await b.embed(["x"])
    assert b.usage.requests == 2


async def test_413_splits_and_learns(fake_server: FakeOpenAIServer) -> None:
    fake_server.inject(413, times=1)
    b = make(fake_server)
    texts = [f"t{i}" for i in range(40)]
    out = await b.embed(texts)
    np.testing.assert_allclose(out, expected(texts), rtol=1e-6)
    sizes = [r.n_inputs for r in fake_server.requests]
    assert sizes[0] == 40 and sorted(sizes[1:]) == [20, 20]
    fake_server.reset()
    await b.embed(texts)
    assert [r.n_inputs for r in fake_server.requests] == [20, 20]  # learned


async def test_too_many_inputs_400_splits(fake_server: FakeOpenAIServer) -> None:
    # config claims more than the server takes: the server's 400 "too many inputs" splits
    b = make(fake_server, max_inputs_per_request=256)
    texts = [f"u{i}" for i in range(100)]
    out = await b.embed(texts)
    np.testing.assert_allclose(out, expected(texts), rtol=1e-6)
    ok = [r for r in fake_server.requests if r.status == 200]
    assert sum(r.n_inputs for r in ok) == 100
    assert all(r.n_inputs <= 64 for r in ok)


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (401, AuthError), (403, AuthError)]
)
async def test_fail_fast_without_retry(
    fake_server: FakeOpenAIServer, status: int, error: type[Exception]
) -> None:
    fake_server.inject(status, times=5)
    b = make(fake_server)
    with pytest.raises(error) as ei:
        await b.embed(TEXTS)
    assert fake_server.request_count == 1
    assert "SECRET" not in str(ei.value)
    assert b.usage.failures == 1


async def test_wrong_api_key_is_auth_error() -> None:
    with FakeOpenAIServer(dim=8, api_key="right") as srv:
        b = make(srv, api_key="wrong")
        with pytest.raises(AuthError):
            await b.embed(["x"])
        assert srv.request_count == 1


@pytest.mark.parametrize("kind", ["malformed", "wrong_count", "bad_index", "nan"])
async def test_bad_responses(fake_server: FakeOpenAIServer, kind: str) -> None:
    fake_server.inject(200, kind=kind, times=1)
    b = make(fake_server)
    np.testing.assert_allclose(await b.embed(TEXTS), expected(TEXTS), rtol=1e-6)  # retried
    fake_server.reset()
    fake_server.inject(200, kind=kind, times=1)
    strict = make(fake_server, retry_bad_response=False)
    with pytest.raises(BadResponseError):
        await strict.embed(TEXTS)


async def test_never_exceeds_limits(fake_server: FakeOpenAIServer) -> None:
    b = make(
        fake_server,
        max_inputs_per_request=16,
        max_tokens_per_request=200,
        max_concurrency=2,
    )
    fake_server.inject(200, delay=0.05, times=200)  # slow answers to exercise concurrency
    texts = [f"word {i} " * (1 + i % 7) for i in range(150)]
    out = await b.embed(texts)
    np.testing.assert_allclose(out, expected(texts), rtol=1e-6)
    reqs = fake_server.requests
    assert all(r.n_inputs <= 16 and r.tokens <= 200 for r in reqs)
    assert all(r.status == 200 for r in reqs)
    assert fake_server.max_in_flight <= 2
    assert fake_server.max_in_flight == 2  # and concurrency is actually used
    assert sorted(fake_server.inputs_seen) == sorted(texts)  # each sent once (any order)
    assert b.usage.inputs == 150 and b.usage.requests == len(reqs)
    assert b.usage.tokens == sum(r.tokens for r in reqs)


async def test_input_policy_reject(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server, max_tokens_per_input=5)
    with pytest.raises(InputPolicyError) as ei:
        await b.embed(["short", "this one is definitely far more than five tokens long", "x"])
    assert ei.value.index == 1
    with pytest.raises(InputPolicyError) as ei:
        await b.embed(["a", "b", ""])
    assert ei.value.index == 2
    assert fake_server.request_count == 0


async def test_input_policy_truncate(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server, max_tokens_per_input=5, input_policy="truncate")
    long = "this one is definitely far more than five tokens long"
    out = await b.embed(["short", long])
    sent = fake_server.inputs_seen[1]
    assert sent != long and long.startswith(sent)
    assert fake_server.requests[0].tokens <= 5 + 1
    np.testing.assert_allclose(out[1], fake_vector(sent, 8), rtol=1e-6)
    assert "truncate:5:cl100k_base" in b.identity


async def test_client_side_rate_limit_from_headers() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "300ms",
        "x-ratelimit-remaining-tokens": "100000",
        "x-ratelimit-reset-tokens": "1s",
    }
    with FakeOpenAIServer(dim=8, ratelimit_headers=headers) as srv:
        b = make(srv)
        await b.embed(["a"])
        await b.embed(["b"])
        gap = srv.request_times[1] - srv.request_times[0]
        assert gap >= 0.25
        assert b.rate_limiter.waited_s > 0


async def test_prefix_and_input_type(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server, prefix="query: ", normalize=True)
    out = await b.embed(["hello"])
    assert fake_server.inputs_seen == ["query: hello"]
    np.testing.assert_allclose(out[0], fake_vector("query: hello", 8), rtol=1e-5)


async def test_backend_survives_event_loop_change(fake_server: FakeOpenAIServer) -> None:
    b = make(fake_server)
    await b.embed(["a"])

    async def in_other_loop() -> np.ndarray:
        try:
            return await b.embed(["b"])
        finally:
            await b.aclose()

    def other_loop() -> np.ndarray:
        return asyncio.run(in_other_loop())

    out = await asyncio.to_thread(other_loop)
    np.testing.assert_allclose(out[0], fake_vector("b", 8), rtol=1e-6)
