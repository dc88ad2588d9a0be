"""Safetensors (de)serialisation of a head: tensors + a JSON config in the metadata.

Never pickle: the blob is the safetensors format (8-byte little-endian header length, JSON
header with ``__metadata__``, raw tensor bytes).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from tuner.errors import TunerInputError

__all__ = ["FORMAT_VERSION", "METADATA_KEY", "pack", "read_metadata", "unpack"]

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
