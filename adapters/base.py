"""The embedding-backend Protocol, limits, usage counters, typed errors and shared helpers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]
Modality = Literal["text", "image"]

IDENTITY_PREFIX = "nmtune-emb/v1:"
# Part of every identity: bump one only when the inputs reach the model differently, since
# cached embeddings are keyed on the identity (tests/adapters/test_identity_pins.py pins them).
TEXT_PREPROCESSING_VERSION = "text-1"
IMAGE_PREPROCESSING_VERSION = "image-1"


class AdapterError(Exception):
    """Base class of every error raised by an embedding backend."""


class AuthError(AdapterError):
    """The provider refused our credentials (401/403)."""


class RateLimitedError(AdapterError):
    """Rate limited beyond what we are willing to wait for; ``retry_after`` in seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(AdapterError):
    """The backend is unreachable, timing out or failing (5xx) after all retries."""


class BadRequestError(AdapterError):
    """The provider rejected the request as invalid (400/404/422); retrying will not help."""


class BadResponseError(AdapterError):
    """The provider answered with something we cannot trust (count, indices, dims, NaN, JSON)."""


class InputPolicyError(AdapterError):
    """One input violates the configured input policy (empty, too long, wrong type)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(f"input {index}: {message}")
        self.index = index
        self.reason = message


class MissingExtraError(AdapterError):
    """An optional dependency needed by this backend kind is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this backend needs the optional module {module!r}: "
            f"install it with `pip install nmtune[{extra}]`"
        )
        self.extra = extra


@dataclass(frozen=True)
class BackendLimits:
    """What one backend accepts; the adapter never sends more than this."""

    max_inputs_per_request: int
    max_tokens_per_request: int | None = None
    max_tokens_per_input: int | None = None
    max_concurrency: int = 1

    def __post_init__(self) -> None:
        if self.max_inputs_per_request < 1 or self.max_concurrency < 1:
            raise ValueError("max_inputs_per_request and max_concurrency must be >= 1")
        for v in (self.max_tokens_per_request, self.max_tokens_per_input):
            if v is not None and v < 1:
                raise ValueError("token limits must be >= 1 or None")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    """Cumulative usage of one backend (requests actually sent, inputs embedded, tokens)."""

    requests: int = 0
    inputs: int = 0
    tokens: int = 0
    retries: int = 0
    failures: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class EmbeddingBackend(Protocol):
    """One frozen backbone that turns inputs into float32 vectors.

    Not ``runtime_checkable`` on purpose: ``dim`` of a remote backend without configured
    dimensions raises until ``ensure_ready()``, which would make isinstance() checks lie.
    """

    name: str
    kind: str
    modality: Modality
    limits: BackendLimits
    usage: Usage

    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> str: ...

    async def ensure_ready(self) -> None: ...

    async def embed(self, inputs: Sequence[str] | Sequence[bytes]) -> FloatMatrix: ...

    def describe(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def make_identity(fields: Mapping[str, Any]) -> str:
    """A stable identity string: canonical JSON of the fields that change the vectors."""
    return IDENTITY_PREFIX + json.dumps(dict(fields), sort_keys=True, separators=(",", ":"))


def identity_digest(identity: str) -> str:
    """sha256 (64 hex characters) of an identity: the backbone part of every embedding cache
    key, so vectors made under one identity are never served under another."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def public_url(url: str) -> str:
    """URL without credentials, query or fragment, and without a trailing slash."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path.rstrip("/"), "", ""))


def check_matrix(vectors: FloatMatrix, n: int, dim: int | None) -> FloatMatrix:
    """Validate an (n, dim) finite float32 matrix; raise BadResponseError otherwise."""
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise BadResponseError(f"expected {n} vectors, got shape {vectors.shape}")
    if dim is not None and vectors.shape[1] != dim:
        raise BadResponseError(f"expected dim {dim}, got {vectors.shape[1]}")
    if not np.isfinite(vectors).all():
        raise BadResponseError("non-finite values in embeddings")
    return np.ascontiguousarray(vectors, dtype=np.float32)


def empty_matrix(dim: int) -> FloatMatrix:
    return np.zeros((0, dim), dtype=np.float32)
