from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters import AdapterError, EmbeddingBackend
from service.errors import ServiceUnavailable, ValidationFailed

if TYPE_CHECKING:
    from service.context import AppContext


async def get_backend(ctx: AppContext, name: str, field: str = "backbone") -> EmbeddingBackend:
    """The configured backend, ready to embed; 422 for an unknown name."""
    if name not in ctx.registry.names():
        known = ", ".join(sorted(ctx.registry.names())) or "none"
        raise ValidationFailed(
            f"{field}: unknown backbone {name!r} (configured: {known})", field=field
        )
    backend = ctx.registry.get(name)
    try:
        await backend.ensure_ready()
    except AdapterError as exc:
        raise ServiceUnavailable(f"backbone {name!r} is not available: {exc}") from exc
    return backend


def describe_all(ctx: AppContext) -> list[dict[str, Any]]:
    return list(ctx.registry.describe())
