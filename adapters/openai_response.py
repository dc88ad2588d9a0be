"""What the ``openai`` SDK hands back, made safe: status errors -> typed errors, items -> matrix.

Used by ``openai_backend.OpenAIBackend``; nothing here keeps state.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import numpy as np
import openai

from .base import (
    AdapterError,
    AuthError,
    BadRequestError,
    BadResponseError,
    FloatMatrix,
    RateLimitedError,
    UnavailableError,
)
from .retry import parse_retry_after

SPLIT_HINT = re.compile(
    r"too many inputs|too many tokens|request too large|payload too large|batch size|"
    r"max(imum)? (number of )?inputs",
    re.IGNORECASE,
)


class SplitNeeded(Exception):
    """The request was too large for the provider: send it again in halves."""


class Retryable(Exception):
    """A failure worth retrying; ``final`` is raised once the retries are spent."""

    def __init__(self, final: AdapterError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def classify_status_error(
    e: openai.APIStatusError, msg: str, max_retry_after_s: float
) -> Exception:
    """Map an HTTP error to what to do next; ``msg`` is the scrubbed message to report."""
    status = e.status_code
    headers = dict(e.response.headers)
    if status == 413 or (status == 400 and SPLIT_HINT.search(msg)):
        return SplitNeeded(msg)
    if status in (401, 403):
        return AuthError(msg)
    if status == 429:
        ra = parse_retry_after(headers)
        code = getattr(e, "code", None)
        if code == "insufficient_quota":
            return RateLimitedError(msg, ra)
        if ra is not None and ra > max_retry_after_s:
            return RateLimitedError(msg + f" (retry after {ra:.0f}s > cap)", ra)
        return Retryable(RateLimitedError(msg, ra), ra)
    if status in (408, 409) or status >= 500:
        ra = parse_retry_after(headers)
        if ra is not None and ra > max_retry_after_s:
            ra = None
        return Retryable(UnavailableError(msg), ra)
    return BadRequestError(msg)


def decode_embeddings(
    items: Any, n: int, *, name: str, want_dim: int | None, normalize: bool
) -> FloatMatrix:
    """The response's ``data`` as an (n, dim) float32 matrix in input order, or BadResponseError.

    Accepts base64 (little-endian float32) or float lists; checks count, indices, shape,
    ``want_dim`` and finiteness; L2-normalises rows when ``normalize``.
    """
    if not isinstance(items, list) or len(items) != n:
        got = len(items) if isinstance(items, list) else type(items).__name__
        raise BadResponseError(f"{name}: expected {n} embeddings, got {got}")
    indices = [getattr(it, "index", None) for it in items]
    if not all(isinstance(i, int) for i in indices) or sorted(indices) != list(range(n)):  # type: ignore[type-var]
        raise BadResponseError(f"{name}: response indices are not 0..{n - 1}")
    embs = [getattr(it, "embedding", None) for it in items]
    try:
        if all(isinstance(e, str) for e in embs):
            bufs = [base64.b64decode(e) for e in embs]  # type: ignore[arg-type]
            width = len(bufs[0])
            if width == 0 or width % 4 or any(len(b) != width for b in bufs):
                raise BadResponseError(f"{name}: ragged or empty base64 embeddings")
            mat = np.frombuffer(b"".join(bufs), dtype="<f4").reshape(n, width // 4)
        else:
            mat = np.asarray(embs, dtype=np.float32)
    except (binascii.Error, ValueError, TypeError) as e:
        raise BadResponseError(f"{name}: undecodable embeddings: {e}") from None
    if mat.ndim != 2 or mat.shape[1] == 0:
        raise BadResponseError(f"{name}: ragged embeddings")
    if indices != list(range(n)):
        mat = mat[np.argsort(np.asarray(indices))]
    mat = mat.astype(np.float32, copy=False)
    if want_dim is not None and mat.shape[1] != want_dim:
        raise BadResponseError(f"{name}: expected dim {want_dim}, got {mat.shape[1]}")
    if not np.isfinite(mat).all():
        raise BadResponseError(f"{name}: non-finite values in embeddings")
    if normalize:
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        mat = mat / np.maximum(norms, 1e-12)
    return mat
