from __future__ import annotations

from typing import Any

from adapters import AdapterError, BackendRegistry, EmbeddingBackend
from service.errors import ServiceUnavailable, ValidationFailed


def known_backend(
    registry: BackendRegistry, name: str, field: str = "backbone"
) -> EmbeddingBackend:
    """The configured backend, not loaded (its identity and modality are known from its
    configuration); 422 for an unknown name. What a request that only queues work needs."""
    if name not in registry.names():
        known = ", ".join(sorted(registry.names())) or "none"
        raise ValidationFailed(
            f"{field}: unknown backbone {name!r} (configured: {known})", field=field
        )
    return registry.get(name)


async def get_backend(
    registry: BackendRegistry, name: str, field: str = "backbone"
) -> EmbeddingBackend:
    """The configured backend, ready to embed; 422 for an unknown name."""
    backend = known_backend(registry, name, field)
    try:
        await backend.ensure_ready()
    except AdapterError as exc:
        raise ServiceUnavailable(f"backbone {name!r} is not available: {exc}") from exc
    return backend


def describe_all(registry: BackendRegistry) -> list[dict[str, Any]]:
    return list(registry.describe())
