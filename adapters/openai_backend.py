"""OpenAI, Azure OpenAI and OpenAI-compatible embedding backends (official ``openai`` SDK)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, cast

import numpy as np
import openai

from .base import (
    TEXT_PREPROCESSING_VERSION,
    AdapterError,
    BadRequestError,
    BadResponseError,
    FloatMatrix,
    InputPolicyError,
    UnavailableError,
    Usage,
    check_matrix,
    empty_matrix,
    make_identity,
    public_url,
)
from .batching import plan_batches, token_counts
from .config import KNOWN_DIMS, RemoteConfig
from .openai_response import Retryable, SplitNeeded, classify_status_error, decode_embeddings
from .ratelimit import HeaderRateLimiter
from .retry import RetryPolicy
from .tokenizer import get_token_counter

__all__ = ["KNOWN_DIMS", "OpenAIBackend", "public_url"]

log = logging.getLogger(__name__)


class OpenAIBackend:
    """One backend of the OpenAI family; ``config`` picks OpenAI, Azure or compatible."""

    modality: Literal["text", "image"] = "text"

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self.limits = config.limits
        self.usage = Usage()
        self.retry_policy = RetryPolicy(
            max_retries=config.max_retries,
            base_s=config.backoff_base_s,
            max_s=config.backoff_max_s,
            max_retry_after_s=config.max_retry_after_s,
        )
        self.rate_limiter = HeaderRateLimiter(max_wait_s=config.max_retry_after_s)
        self._counter = get_token_counter(config.tokenizer)
        self._dim: int | None = config.known_dim
        self._max_inputs = self.limits.max_inputs_per_request  # lowered after a 413
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._rng = random.Random()
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injectable for tests
        self._identity = make_identity(self._identity_fields())

    # -- identity / description --------------------------------------------------------
    def _identity_fields(self) -> dict[str, Any]:
        c = self.config
        provider, endpoint = c.provider_and_endpoint()
        truncation = (
            f"truncate:{c.max_tokens_per_input}:{self._counter.name}"
            if c.input_policy == "truncate"
            else "reject"
        )
        return {
            "provider": provider,
            "endpoint": endpoint,
            "model": c.model,
            "revision": c.revision,
            "dimensions": c.dimensions,
            "truncation": truncation,
            "normalize": c.normalize,
            "input_type": c.input_type,
            "prefix": c.prefix,
            "preprocessing": TEXT_PREPROCESSING_VERSION,
        }

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise AdapterError(f"{self.name}: dim unknown until `await ensure_ready()`")
        return self._dim

    def describe(self) -> dict[str, Any]:
        cfg = self.config.public_dict()
        cfg["extra_headers"] = sorted(self.config.extra_headers)  # names only, values may be secret
        for k in ("base_url", "endpoint"):
            if isinstance(cfg.get(k), str):
                cfg[k] = public_url(cfg[k])
        return {
            "name": self.name,
            "kind": self.kind,
            "modality": self.modality,
            "dim": self._dim,
            "identity": self.identity,
            "limits": self.limits.to_dict(),
            "usage": self.usage.to_dict(),
            "config": cfg,
        }

    # -- client lifecycle ---------------------------------------------------------------
    def _make_client(self) -> openai.AsyncOpenAI:
        c = self.config
        client_class = cast(type[openai.AsyncOpenAI], getattr(openai, c.client_class))
        return client_class(
            **c.client_kwargs(),
            timeout=c.timeout_s,
            max_retries=0,  # we own the retry policy
            default_headers=dict(c.extra_headers) or None,
        )

    def _client_for_loop(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        """One client + semaphore per event loop (workers may run several loops in turn)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._sem is None or self._loop is not loop:
            self._client = self._make_client()
            self._sem = asyncio.Semaphore(self.limits.max_concurrency)
            self._loop = loop
        return self._client, self._sem

    async def ensure_ready(self) -> None:
        """Learn ``dim`` by embedding one probe text when it is not known from the config."""
        if self._dim is None:
            await self.embed(["dimension probe"])

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._sem = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()

    # -- embedding ----------------------------------------------------------------------
    def _prepare(self, inputs: Sequence[str] | Sequence[bytes]) -> tuple[list[str], list[int]]:
        c = self.config
        if isinstance(inputs, str | bytes):
            raise InputPolicyError("inputs must be a sequence of strings, not one string", 0)
        texts: list[str] = []
        for i, t in enumerate(inputs):
            if not isinstance(t, str):
                raise InputPolicyError(f"expected str, got {type(t).__name__}", i)
            if not t.strip():
                raise InputPolicyError("empty or whitespace-only text", i)
            texts.append(c.prefix + t if c.prefix else t)
        lim = self.limits
        per_input = lim.max_tokens_per_input
        exact_above = min(
            per_input if per_input is not None else 1 << 62,
            (lim.max_tokens_per_request // lim.max_inputs_per_request)
            if lim.max_tokens_per_request is not None
            else 1 << 62,
        )
        counts = token_counts(texts, self._counter, exact_above)
        if per_input is not None:
            for i, n in enumerate(counts):
                if n <= per_input:
                    continue
                if c.input_policy == "reject":
                    raise InputPolicyError(f"{n} tokens > max_tokens_per_input {per_input}", i)
                texts[i] = self._counter.truncate(texts[i], per_input)
                counts[i] = min(per_input, self._counter.count([texts[i]])[0])
        return texts, counts

    async def embed(self, inputs: Sequence[str] | Sequence[bytes]) -> FloatMatrix:
        texts, counts = self._prepare(inputs)
        if not texts:
            return empty_matrix(self._dim or 0)
        batches = plan_batches(counts, self._max_inputs, self.limits.max_tokens_per_request)
        try:
            parts = await asyncio.gather(
                *(self._embed_range(texts[a:b], counts[a:b]) for a, b in batches)
            )
        except AdapterError:
            self.usage.failures += 1
            raise
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        return check_matrix(out, len(texts), self._dim)

    async def _embed_range(self, texts: list[str], counts: list[int]) -> FloatMatrix:
        attempt = 0
        while True:
            try:
                return await self._request(texts, sum(counts))
            except SplitNeeded as e:
                if len(texts) == 1:
                    raise BadRequestError(f"provider rejects even a single input: {e}") from None
                mid = len(texts) // 2
                self._max_inputs = max(1, min(self._max_inputs, mid))
                log.warning("%s: request too large (%d inputs); splitting", self.name, len(texts))
                a, b = await asyncio.gather(
                    self._embed_range(texts[:mid], counts[:mid]),
                    self._embed_range(texts[mid:], counts[mid:]),
                )
                return np.concatenate([a, b], axis=0)
            except Retryable as e:
                if attempt >= self.retry_policy.max_retries:
                    raise e.final from None
                delay = e.retry_after
                if delay is None:
                    delay = self.retry_policy.backoff(attempt, self._rng)
                log.info("%s: %s; retry %d in %.3fs", self.name, e.final, attempt + 1, delay)
                self.usage.retries += 1
                attempt += 1
                await self.sleep(delay)

    def _scrub(self, msg: str) -> str:
        for s in self.config.secrets():
            msg = msg.replace(s.get(), "***")
        return msg

    def _classify(self, e: openai.APIStatusError) -> Exception:
        msg = self._scrub(f"{self.name}: HTTP {e.status_code}: {e.message}")
        return classify_status_error(e, msg, self.retry_policy.max_retry_after_s)

    async def _request(self, texts: list[str], tokens: int) -> FloatMatrix:
        c = self.config
        client, sem = self._client_for_loop()
        kwargs: dict[str, Any] = {
            "input": texts,
            "model": c.request_model,
            "encoding_format": "base64" if c.use_base64 else "float",
        }
        if c.dimensions is not None:
            kwargs["dimensions"] = c.dimensions
        if c.input_type is not None:
            kwargs["extra_body"] = {"input_type": c.input_type}
        async with sem:
            if c.client_rate_limit:
                await self.rate_limiter.acquire(tokens)
            self.usage.requests += 1
            try:
                raw = await client.embeddings.with_raw_response.create(**kwargs)
            except openai.APITimeoutError:
                raise Retryable(UnavailableError(f"{self.name}: request timed out")) from None
            except openai.APIConnectionError as e:
                raise Retryable(
                    UnavailableError(self._scrub(f"{self.name}: connection error: {e}"))
                ) from None
            except openai.APIStatusError as e:
                raise self._classify(e) from None
            if c.client_rate_limit:
                self.rate_limiter.update(raw.headers)
            try:
                resp = raw.parse()
                vectors = self._decode(resp.data, len(texts))
            except (BadResponseError, Exception) as e:
                err = (
                    e
                    if isinstance(e, BadResponseError)
                    else BadResponseError(
                        f"{self.name}: unparseable response: {type(e).__name__}: {e}"
                    )
                )
                if c.retry_bad_response:
                    raise Retryable(err) from None
                raise err from None
        self.usage.inputs += len(texts)
        used = getattr(getattr(resp, "usage", None), "prompt_tokens", None)
        self.usage.tokens += used if isinstance(used, int) and used > 0 else tokens
        return vectors

    def _decode(self, items: Any, n: int) -> FloatMatrix:
        mat = decode_embeddings(
            items,
            n,
            name=self.name,
            want_dim=self.config.dimensions or self._dim,
            normalize=self.config.normalize,
        )
        if self._dim is None:
            self._dim = int(mat.shape[1])
        return mat
