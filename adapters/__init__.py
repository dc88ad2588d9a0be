"""Embedding backends (remote OpenAI family, local text and image models) behind one Protocol.

No database, no web framework: the SQL cache that wraps these lives in ``service``.
"""

from .base import (
    AdapterError,
    AuthError,
    BackendLimits,
    BadRequestError,
    BadResponseError,
    EmbeddingBackend,
    InputPolicyError,
    MissingExtraError,
    RateLimitedError,
    UnavailableError,
    Usage,
    identity_digest,
)
from .config import BackendConfigError, Secret
from .registry import BackendRegistry, UnknownBackendError, build_backend

__all__ = [
    "AdapterError",
    "AuthError",
    "BackendConfigError",
    "BackendLimits",
    "BackendRegistry",
    "BadRequestError",
    "BadResponseError",
    "EmbeddingBackend",
    "InputPolicyError",
    "MissingExtraError",
    "RateLimitedError",
    "Secret",
    "UnavailableError",
    "UnknownBackendError",
    "Usage",
    "build_backend",
    "identity_digest",
]
