"""OpenAI, Azure OpenAI and OpenAI-compatible embedding backends (official ``openai`` SDK)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import openai

from .base import (
    AdapterError,
    AuthError,
    BadRequestError,
    BadResponseError,
    FloatMatrix,
    InputPolicyError,
    RateLimitedError,
    UnavailableError,
    Usage,
    check_matrix,
    empty_matrix,
    make_identity,
)
from .batching import plan_batches, token_counts
from .config import AzureOpenAIConfig, OpenAICompatibleConfig, OpenAIConfig, RemoteConfig
from .ratelimit import HeaderRateLimiter
from .retry import RetryPolicy, parse_retry_after
from .tokenizer import get_token_counter

log = logging.getLogger(__name__)

PREPROCESSING_VERSION = "text-1"
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SPLIT_HINT = re.compile(
    r"too many inputs|too many tokens|request too large|payload too large|batch size|"
    r"max(imum)? (number of )?inputs",
    re.IGNORECASE,
)


class _SplitNeeded(Exception):
    pass


class _Retryable(Exception):
    def __init__(self, final: AdapterError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def public_url(url: str) -> str:
    """URL without credentials, query or fragment, and without a trailing slash."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path.rstrip("/"), "", ""))


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
        self._dim: int | None = config.dimensions or config.expected_dim
        if self._dim is None and isinstance(config, OpenAIConfig | AzureOpenAIConfig):
            self._dim = KNOWN_DIMS.get(config.model)
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
        if isinstance(c, AzureOpenAIConfig):
            provider, endpoint = "azure-openai", f"{public_url(c.endpoint)}#{c.deployment}"
        elif isinstance(c, OpenAICompatibleConfig):
            provider, endpoint = c.provider, public_url(c.base_url)
        elif isinstance(c, OpenAIConfig):
            provider, endpoint = "openai", public_url(c.base_url)
        else:  # pragma: no cover
            raise AdapterError(f"unsupported config {type(c).__name__}")
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
            "preprocessing": PREPROCESSING_VERSION,
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
        key = c.api_key.get() if c.api_key else None
        common: dict[str, Any] = {
            "timeout": c.timeout_s,
            "max_retries": 0,  # we own the retry policy
            "default_headers": dict(c.extra_headers) or None,
        }
        if isinstance(c, AzureOpenAIConfig):
            return openai.AsyncAzureOpenAI(
                azure_endpoint=c.endpoint,
                azure_deployment=c.deployment,
                api_version=c.api_version,
                api_key=key,
                azure_ad_token=c.azure_ad_token.get() if c.azure_ad_token else None,
                **common,
            )
        if isinstance(c, OpenAIConfig):
            return openai.AsyncOpenAI(
                api_key=key or "",
                base_url=c.base_url,
                organization=c.organization,
                project=c.project,
                **common,
            )
        assert isinstance(c, OpenAICompatibleConfig)
        return openai.AsyncOpenAI(api_key=key or "not-needed", base_url=c.base_url, **common)

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
            except _SplitNeeded as e:
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
            except _Retryable as e:
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
        for s in (self.config.api_key, getattr(self.config, "azure_ad_token", None)):
            if s:
                msg = msg.replace(s.get(), "***")
        return msg

    def _classify(self, e: openai.APIStatusError) -> Exception:
        status = e.status_code
        headers = dict(e.response.headers)
        msg = self._scrub(f"{self.name}: HTTP {status}: {e.message}")
        if status == 413 or (status == 400 and _SPLIT_HINT.search(msg)):
            return _SplitNeeded(msg)
        if status in (401, 403):
            return AuthError(msg)
        if status == 429:
            ra = parse_retry_after(headers)
            code = getattr(e, "code", None)
            if code == "insufficient_quota":
                return RateLimitedError(msg, ra)
            if ra is not None and ra > self.retry_policy.max_retry_after_s:
                return RateLimitedError(msg + f" (retry after {ra:.0f}s > cap)", ra)
            return _Retryable(RateLimitedError(msg, ra), ra)
        if status in (408, 409) or status >= 500:
            ra = parse_retry_after(headers)
            if ra is not None and ra > self.retry_policy.max_retry_after_s:
                ra = None
            return _Retryable(UnavailableError(msg), ra)
        return BadRequestError(msg)

    async def _request(self, texts: list[str], tokens: int) -> FloatMatrix:
        c = self.config
        client, sem = self._client_for_loop()
        model = c.deployment if isinstance(c, AzureOpenAIConfig) else c.model
        kwargs: dict[str, Any] = {
            "input": texts,
            "model": model,
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
                raise _Retryable(UnavailableError(f"{self.name}: request timed out")) from None
            except openai.APIConnectionError as e:
                raise _Retryable(
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
                    raise _Retryable(err) from None
                raise err from None
        self.usage.inputs += len(texts)
        used = getattr(getattr(resp, "usage", None), "prompt_tokens", None)
        self.usage.tokens += used if isinstance(used, int) and used > 0 else tokens
        return vectors

    def _decode(self, items: Any, n: int) -> FloatMatrix:
        if not isinstance(items, list) or len(items) != n:
            got = len(items) if isinstance(items, list) else type(items).__name__
            raise BadResponseError(f"{self.name}: expected {n} embeddings, got {got}")
        indices = [getattr(it, "index", None) for it in items]
        if not all(isinstance(i, int) for i in indices) or sorted(indices) != list(range(n)):  # type: ignore[type-var]
            raise BadResponseError(f"{self.name}: response indices are not 0..{n - 1}")
        embs = [getattr(it, "embedding", None) for it in items]
        try:
            if all(isinstance(e, str) for e in embs):
                bufs = [base64.b64decode(e) for e in embs]  # type: ignore[arg-type]
                width = len(bufs[0])
                if width == 0 or width % 4 or any(len(b) != width for b in bufs):
                    raise BadResponseError(f"{self.name}: ragged or empty base64 embeddings")
                mat = np.frombuffer(b"".join(bufs), dtype="<f4").reshape(n, width // 4)
            else:
                mat = np.asarray(embs, dtype=np.float32)
        except (binascii.Error, ValueError, TypeError) as e:
            raise BadResponseError(f"{self.name}: undecodable embeddings: {e}") from None
        if mat.ndim != 2 or mat.shape[1] == 0:
            raise BadResponseError(f"{self.name}: ragged embeddings")
        if indices != list(range(n)):
            mat = mat[np.argsort(np.asarray(indices))]
        mat = mat.astype(np.float32, copy=False)
        want = self.config.dimensions or self._dim
        if want is not None and mat.shape[1] != want:
            raise BadResponseError(f"{self.name}: expected dim {want}, got {mat.shape[1]}")
        if not np.isfinite(mat).all():
            raise BadResponseError(f"{self.name}: non-finite values in embeddings")
        if self.config.normalize:
            norms = np.linalg.norm(mat, axis=1, keepdims=True)
            mat = mat / np.maximum(norms, 1e-12)
        if self._dim is None:
            self._dim = int(mat.shape[1])
        return mat
