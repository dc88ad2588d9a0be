from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nmtune.adapters import AdapterError, BackendRegistry, EmbeddingBackend, RateLimitedError, Usage
from nmtune.service.errors import ServiceUnavailable, ValidationFailed
from nmtune.service.jobs.handlers import JobFailed


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


log = logging.getLogger(__name__)

#: backbones that load a model into this process (remote APIs have nothing to warm)
LOCAL_KINDS = ("sentence-transformers", "transformers", "image")


class Warmup:
    """Loads the local backbones in the background at start-up, so that no request (and no
    first job) pays the model load; ``state`` says per backbone: loading, ready, error."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    async def run(self, registry: BackendRegistry) -> None:
        names = [n for n in registry.names() if registry.get(n).kind in LOCAL_KINDS]
        self.state.update({n: "loading" for n in names})
        for name in names:
            t0 = time.perf_counter()
            try:
                await registry.get(name).ensure_ready()
            except AdapterError as exc:
                self.state[name] = f"error: {exc}"
                log.warning("backbone warm-up failed", extra={"backbone": name})
                continue
            except Exception as exc:  # a broken model file must not stop the service
                self.state[name] = f"error: {type(exc).__name__}"
                log.exception("backbone warm-up failed", extra={"backbone": name})
                continue
            self.state[name] = "ready"
            log.info(
                "backbone warm",
                extra={"backbone": name, "load_s": round(time.perf_counter() - t0, 3)},
            )


def check_modality(backend: EmbeddingBackend, name: str, modality: str) -> None:
    """422 on ``backbone`` unless ``backend`` (configured as ``name``) embeds ``modality``
    (a dataset's: text or image)."""
    if backend.modality != modality:
        raise ValidationFailed(
            f"backbone: {name!r} embeds {backend.modality}, the dataset holds {modality}",
            field="backbone",
        )


async def get_backend(
    registry: BackendRegistry, name: str, field: str = "backbone"
) -> EmbeddingBackend:
    """The configured backend, ready to embed; 422 for an unknown name."""
    backend = known_backend(registry, name, field)
    try:
        await backend.ensure_ready()
    except RateLimitedError as exc:  # the same words and Retry-After as a failed embed
        raise ServiceUnavailable(
            f"backbone {name!r} is rate limited; retry later", retry_after=exc.retry_after or 5.0
        ) from exc
    except AdapterError as exc:
        raise ServiceUnavailable(
            f"backbone {name!r} is unavailable ({exc}); retry later", retry_after=5.0
        ) from exc
    return backend


async def backend_for_job(
    registry: BackendRegistry, name: str, identity: str, what: str
) -> EmbeddingBackend:
    """In a job: the backend that the ``what`` ("head", "audit") was created with, ready to
    embed; JobFailed ``BackboneChanged`` when its configuration (identity) changed since."""
    backend = registry.get(name)
    await backend.ensure_ready()
    if backend.identity != identity:
        raise JobFailed(
            "BackboneChanged",
            f"backbone {name!r} changed configuration since the {what} was created; "
            f"create a new {what}",
        )
    return backend


def describe_all(
    registry: BackendRegistry, usage_of: Callable[[str], Usage] | None = None
) -> list[dict[str, Any]]:
    """Every backbone; ``usage_of(name)``: the caller's own usage (the backend's counters
    are process-wide, i.e. every tenant's, and are not shown to a tenant)."""
    out = list(registry.describe())
    if usage_of is not None:
        for item in out:
            item["usage"] = usage_of(str(item["name"])).to_dict()
    return out
