"""The head blob: safetensors tensors + a JSON config and record in the metadata.

Never pickle: the blob is the safetensors format (8-byte little-endian header length, JSON
header with ``__metadata__``, raw tensor bytes).
"""

from __future__ import annotations

import json
import math
import platform
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import safetensors
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from nmtune.tuner._version import __version__
from nmtune.tuner.config import TRAINED_METHODS, HeadConfig
from nmtune.tuner.errors import TunerInputError
from nmtune.tuner.heads import HeadModule, build_head
from nmtune.tuner.metrics import to_native
from nmtune.tuner.training import resolve_device

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "LoadedHead",
    "head_blob",
    "load_head_blob",
    "pack",
    "read_metadata",
    "unpack",
]

FORMAT_VERSION = 1
METADATA_KEY = "nmtune.config"
_MAX_HEADER = 100 * 1024 * 1024


def pack(tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> bytes:
    """Safetensors bytes of ``tensors`` (moved to CPU, contiguous) with ``config`` as JSON."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {METADATA_KEY: json.dumps(config, sort_keys=True, allow_nan=False)}
    return bytes(st_save(cpu, metadata=meta))


def read_metadata(blob: bytes) -> dict[str, Any]:
    """The JSON config stored in a blob, without reading the tensors."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise TunerInputError(f"expected bytes, got {type(blob).__name__}")
    data = bytes(blob)
    if len(data) < 8:
        raise TunerInputError("not a safetensors blob: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise TunerInputError("not a safetensors blob: bad header length")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        raw = header["__metadata__"][METADATA_KEY]
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TunerInputError(f"blob has no readable nmtune config: {exc}") from exc
    if not isinstance(config, dict):
        raise TunerInputError("nmtune config in the blob is not a JSON object")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise TunerInputError(
            f"unsupported head format_version {version!r} (this tuner reads {FORMAT_VERSION})"
        )
    return config


def unpack(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, config) from a blob written by :func:`pack`."""
    config = read_metadata(blob)
    try:
        tensors = st_load(bytes(blob))
    except Exception as exc:  # safetensors raises its own error type for corrupt data
        raise TunerInputError(f"corrupt safetensors blob: {exc}") from exc
    return dict(tensors), config


# ------------------------------------------------------------------ the head blob format
class FittedHead(Protocol):
    """What :func:`head_blob` reads from a fitted ``NMTuneClassifier``."""

    method: str
    method_: str
    config_: HeadConfig
    classes_: np.ndarray[Any, Any]
    class_type_: str
    n_features_in_: int
    model_: HeadModule
    device_: str
    best_epoch_: int
    best_score_: float | None
    best_val_macro_f1_: float | None
    validation_: str
    selection_: dict[str, Any]
    n_train_: int
    n_val_: int
    candidates_: list[dict[str, Any]]
    history_: list[dict[str, Any]]
    auto_settings_: dict[str, Any]


def head_blob(clf: FittedHead, backbone_identity: str = "") -> bytes:
    """Safetensors bytes of a fitted head: its weights, and its config + record as JSON."""
    meta = {
        "format_version": FORMAT_VERSION,
        "method": clf.method_,
        "requested_method": clf.method,
        "config": clf.config_.to_dict(),
        "classes": [to_native(c) for c in clf.classes_.tolist()],
        "class_type": clf.class_type_,
        "n_features": clf.n_features_in_,
        "n_classes": int(clf.classes_.size),
        "seed": clf.config_.seed,
        "device": clf.device_,
        "best_epoch": clf.best_epoch_,
        "best_val_accuracy": clf.best_score_,
        "best_val_macro_f1": clf.best_val_macro_f1_,
        "validation": clf.validation_,
        "selection": clf.selection_,
        "n_train": clf.n_train_,
        "n_validation": clf.n_val_,
        "candidates": clf.candidates_,
        "auto_settings": clf.auto_settings_,  # auto's selection settings (reported only)
        "history": clf.history_,
        "backbone_identity": str(backbone_identity),
        "versions": {
            "tuner": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
            "python": platform.python_version(),
        },
    }
    return pack(clf.model_.state_dict(), _json_safe(meta))


def _json_safe(obj: Any) -> Any:
    """Non-finite floats -> None (JSON has no NaN); containers recursively."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


@dataclass
class LoadedHead:
    """A head read back from a blob (weights loaded and checked)."""

    model: HeadModule
    config: HeadConfig
    requested_method: str
    classes: list[Any]
    class_type: str
    n_features: int
    device: str
    meta: dict[str, Any]


def _kind_of(values: list[Any]) -> str:
    kinds = {"str" if isinstance(v, str) else "int" if isinstance(v, int) else "?" for v in values}
    return kinds.pop() if len(kinds) == 1 else "?"


def load_head_blob(blob: bytes, device: str = "cpu") -> LoadedHead:
    """Read a blob written by :func:`head_blob`; checks the config against the tensors."""
    tensors, meta = unpack(blob)
    try:
        method = meta["method"]
        if method not in TRAINED_METHODS:
            raise TunerInputError(f"unknown head method {method!r} in blob")
        config = HeadConfig.from_dict(meta["config"])
        if config.method != method:
            raise TunerInputError("blob method and config method differ")
        n_features = int(meta["n_features"])
        n_classes = int(meta["n_classes"])
        kind = meta["class_type"]
        classes = meta["classes"]
        if kind not in ("str", "int") or not isinstance(classes, list):
            raise TunerInputError("blob has bad class labels")
        if len(classes) != n_classes or n_classes < 2 or n_features < 1:
            raise TunerInputError("blob n_classes / n_features / classes disagree")
        if _kind_of(classes) != kind or any(isinstance(c, bool) for c in classes):
            raise TunerInputError("blob class_type does not match its classes")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TunerInputError):
            raise
        raise TunerInputError(f"invalid head config in blob: {exc}") from exc

    model = build_head(config, n_features, n_classes)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:6]
        raise TunerInputError(f"blob tensors do not match its config: {diff}")
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise TunerInputError(f"blob tensor {k!r} has NaN or inf")
    model.load_state_dict(tensors)
    dev = resolve_device(device)
    model.to(dev).eval()
    return LoadedHead(
        model=model,
        config=config,
        requested_method=str(meta.get("requested_method", method)),
        classes=classes,
        class_type=kind,
        n_features=n_features,
        device=str(dev),
        meta=meta,
    )
