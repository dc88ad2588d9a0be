"""The base of local backbones (text and image): lazy load, one inference at a time, usage.

Also resolving a model spec to a path and a revision, picking the device, optional imports.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .base import (
    AdapterError,
    BackendLimits,
    FloatMatrix,
    InputPolicyError,
    MissingExtraError,
    Usage,
    check_matrix,
    empty_matrix,
    make_identity,
)
from .config import LocalConfig

log = logging.getLogger(__name__)

_REVISION_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


def import_extra(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(extra, module) from e


def resolve_model(model: str) -> tuple[str, str | None]:
    """Return (path or hub name, package version) for "package:<module>" / dir / hub name."""
    if model.startswith("package:"):
        module = model.split(":", 1)[1]
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise AdapterError(
                f"model package {module!r} is not installed "
                f"(pip install {module.replace('_', '-')})"
            ) from e
        getter = getattr(mod, "get_model_path", None)
        if getter is None:
            raise AdapterError(f"package {module!r} has no get_model_path()")
        version = getattr(mod, "__version__", None)
        if version is None:
            try:
                version = importlib.metadata.version(module.replace("_", "-"))
            except importlib.metadata.PackageNotFoundError:
                version = None
        return str(getter()), str(version) if version else None
    return model, None


def directory_revision(path: Path) -> str:
    """Hash of the model's config files and weight file names/sizes (cheap, content-aware)."""
    h = hashlib.sha256()
    for rel in _REVISION_FILES:
        f = path / rel
        if f.is_file():
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in _WEIGHT_SUFFIXES:
            h.update(f"{f.relative_to(path)}:{f.stat().st_size}\0".encode())
    return h.hexdigest()[:16]


def model_revision(config: LocalConfig, resolved: str, package_version: str | None) -> str:
    if config.revision:
        return config.revision
    p = Path(resolved)
    if p.is_dir():
        rev = directory_revision(p)
        return f"{package_version}+{rev}" if package_version else rev
    if p.is_file():
        return f"size:{p.stat().st_size}"
    return package_version or "hub:default"


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


class LocalBackend:
    """Shared machinery: lazy load in a thread, one inference at a time, usage, describe."""

    kind = ""
    modality: Literal["text", "image"] = "text"
    extra = "local"

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.name = config.name
        self.usage = Usage()
        self.limits = BackendLimits(max_inputs_per_request=config.batch_size, max_concurrency=1)
        self._resolved, self._pkg_version = resolve_model(config.model)
        self._revision = model_revision(config, self._resolved, self._pkg_version)
        self._lock = threading.Lock()  # loop-independent: guards loading and inference
        self._model: Any = None
        self._dim: int | None = None
        self.device: str | None = None
        fields = self._identity_fields()
        if config.autocast_bf16:  # vectors differ slightly from fp32 ones: a different identity
            fields["precision"] = "bf16-autocast-on-cuda"
        self._identity = make_identity(fields)

    # subclasses implement these (run in a worker thread)
    def _load(self) -> None:
        raise NotImplementedError

    def _encode(self, inputs: list[Any], offset: int) -> FloatMatrix:
        """Embed one batch; ``offset`` is the index of inputs[0] in the caller's list."""
        raise NotImplementedError

    def _identity_fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def _check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        if isinstance(inputs, str | bytes):
            raise InputPolicyError("inputs must be a sequence, not a single value", 0)
        for i, t in enumerate(inputs):
            if not isinstance(t, str):
                raise InputPolicyError(f"expected str, got {type(t).__name__}", i)
        return list(inputs)

    def _model_label(self) -> str:
        c = self.config.model
        return c if c.startswith("package:") else Path(self._resolved).name or c

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise AdapterError(f"{self.name}: dim unknown until `await ensure_ready()`")
        return self._dim

    def _ensure_loaded_sync(self) -> None:
        with self._lock:
            if self._model is None:
                self.device = pick_device(self.config.device)
                log.info("%s: loading %s on %s", self.name, self._resolved, self.device)
                self._load()

    async def ensure_ready(self) -> None:
        if self._model is None:
            await asyncio.to_thread(self._ensure_loaded_sync)

    @property
    def batch_size(self) -> int:
        """Inputs per forward pass: larger on a GPU."""
        on_gpu = (self.device or "").startswith("cuda")
        return self.config.gpu_batch_size if on_gpu else self.config.batch_size

    def _run(self, fn: Callable[[], FloatMatrix]) -> FloatMatrix:
        self._ensure_loaded_sync()
        with self._lock:
            if self.config.autocast_bf16 and (self.device or "").startswith("cuda"):
                import torch

                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    return fn()
            return fn()

    async def embed(self, inputs: Sequence[str] | Sequence[bytes]) -> FloatMatrix:
        items = self._check_inputs(inputs)
        if not items:
            await self.ensure_ready()
            return empty_matrix(self.dim)
        await self.ensure_ready()  # the device (and so the batch size) is known once loaded
        bs = self.batch_size
        parts = []
        for start in range(0, len(items), bs):
            chunk = items[start : start + bs]
            # one batch per thread hop: other coroutines run between batches
            parts.append(
                await asyncio.to_thread(self._run, functools.partial(self._encode, chunk, start))
            )
            self.usage.requests += 1
            self.usage.inputs += len(chunk)
        out = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        if self.config.normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return check_matrix(out.astype(np.float32, copy=False), len(items), self._dim)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "modality": self.modality,
            "dim": self._dim,
            "identity": self.identity,
            "device": self.device,
            "limits": self.limits.to_dict(),
            "usage": self.usage.to_dict(),
            "config": self.config.public_dict(),
        }

    async def aclose(self) -> None:
        self._model = None
