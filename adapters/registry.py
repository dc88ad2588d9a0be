"""Build backends from plain specs and keep them by name."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .base import AdapterError, EmbeddingBackend
from .config import (
    CONFIG_TYPES,
    AzureOpenAIConfig,
    ConfigError,
    ImageConfig,
    OpenAICompatibleConfig,
    OpenAIConfig,
    SentenceTransformersConfig,
    TransformersConfig,
)

log = logging.getLogger(__name__)


class UnknownBackendError(AdapterError, KeyError):
    """No backend registered under that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def build_backend(spec: Mapping[str, Any]) -> EmbeddingBackend:
    """Build one backend from a plain dict with ``kind`` and ``name`` (models load lazily)."""
    if not isinstance(spec, Mapping):
        raise ConfigError("backend spec must be a mapping")
    kind = spec.get("kind")
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"unknown backend kind {kind!r}; known: {sorted(CONFIG_TYPES)}")
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ConfigError("backend spec needs a non-empty 'name'")
    config = CONFIG_TYPES[kind].from_mapping(spec)
    if isinstance(config, OpenAIConfig | AzureOpenAIConfig | OpenAICompatibleConfig):
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if isinstance(config, SentenceTransformersConfig):
        from .local_text import SentenceTransformersBackend

        return SentenceTransformersBackend(config)
    if isinstance(config, TransformersConfig):
        from .local_text import TransformersBackend

        return TransformersBackend(config)
    if isinstance(config, ImageConfig):
        from .image import ImageBackend

        return ImageBackend(config)
    raise ConfigError(f"no backend for kind {kind!r}")  # pragma: no cover


class BackendRegistry:
    """Named backends; heavy models load on first ensure_ready()/embed()."""

    def __init__(self, backends: Iterable[EmbeddingBackend] = ()) -> None:
        self._backends: dict[str, EmbeddingBackend] = {}
        for b in backends:
            self.add(b)

    @classmethod
    def from_specs(cls, specs: Iterable[Mapping[str, Any]]) -> BackendRegistry:
        return cls(build_backend(s) for s in specs)

    def add(self, backend: EmbeddingBackend) -> None:
        if backend.name in self._backends:
            raise ConfigError(f"duplicate backend name {backend.name!r}")
        self._backends[backend.name] = backend

    def get(self, name: str) -> EmbeddingBackend:
        try:
            return self._backends[name]
        except KeyError:
            raise UnknownBackendError(
                f"unknown backend {name!r}; configured: {self.names()}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._backends

    def __len__(self) -> int:
        return len(self._backends)

    def names(self) -> list[str]:
        return sorted(self._backends)

    def describe(self) -> list[dict[str, Any]]:
        return [self._backends[n].describe() for n in self.names()]

    async def aclose(self) -> None:
        for b in self._backends.values():
            try:
                await b.aclose()
            except Exception:  # closing must not mask the others
                log.exception("closing backend %s failed", b.name)
