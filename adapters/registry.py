"""Build backends from plain specs and keep them by name."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from .base import AdapterError, EmbeddingBackend
from .config import CONFIG_TYPES, BackendConfig
from .config_base import BackendConfigError

log = logging.getLogger(__name__)


# kind -> "module:Class" of its backend (imported on first use: the SDKs are heavy);
# each class takes its kind's config (``CONFIG_TYPES[kind]``) as its only argument
BACKEND_CLASSES: dict[str, str] = {
    "openai": "openai_backend:OpenAIBackend",
    "azure-openai": "openai_backend:OpenAIBackend",
    "openai-compatible": "openai_backend:OpenAIBackend",
    "sentence-transformers": "local_text:SentenceTransformersBackend",
    "transformers": "local_text:TransformersBackend",
    "image": "image:ImageBackend",
}


def backend_class(kind: str) -> Callable[[BackendConfig], EmbeddingBackend]:
    """The backend class for ``kind`` (imports its module)."""
    module, _, name = BACKEND_CLASSES[kind].partition(":")
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return cast(Callable[[BackendConfig], EmbeddingBackend], cls)


class UnknownBackendError(AdapterError, KeyError):
    """No backend registered under that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def build_backend(spec: Mapping[str, Any]) -> EmbeddingBackend:
    """Build one backend from a plain dict with ``kind`` and ``name`` (models load lazily)."""
    if not isinstance(spec, Mapping):
        raise BackendConfigError("backend spec must be a mapping")
    kind = spec.get("kind")
    if kind not in CONFIG_TYPES:
        raise BackendConfigError(f"unknown backend kind {kind!r}; known: {sorted(CONFIG_TYPES)}")
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise BackendConfigError("backend spec needs a non-empty 'name'")
    return backend_class(kind)(CONFIG_TYPES[kind].from_mapping(spec))


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
            raise BackendConfigError(f"duplicate backend name {backend.name!r}")
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
