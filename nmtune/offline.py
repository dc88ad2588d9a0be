"""Run an exported head without the server and without torch: numpy + safetensors only.

``load_head(path)`` reads what ``GET /v1/heads/{id}/export`` returns (the zip, or a folder
it was extracted to): ``head.json`` (the head's record and the plan of operations),
``weights.safetensors`` (float32 tensors named by the plan) and ``labels.json``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load as st_load

__all__ = ["ExportFormatError", "OfflineHead", "load_head"]

PLAN_FORMAT = "nmtune-head-plan"
PLAN_VERSION = 1
ARCHIVE_FORMAT_VERSION = 1

Array = npt.NDArray[np.float32]


class ExportFormatError(ValueError):
    """The file is not an nmtune head export this version can read."""


@dataclass
class OfflineHead:
    """A trained head as numpy arrays. ``predict`` / ``predict_proba`` / ``transform`` take
    backbone vectors (N, D) from the head's own backbone (``backbone_identity``)."""

    plan: dict[str, Any]
    tensors: dict[str, Array]
    classes: list[str | int]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check()

    @property
    def head_id(self) -> str | None:
        value = self.info.get("id")
        return str(value) if value is not None else None

    @property
    def dim(self) -> int:
        return int(self.plan["n_features"])

    @property
    def backbone_identity(self) -> str:
        return str(self.info.get("backbone_identity", ""))

    def _tensor(self, name: Any) -> Array:
        if not isinstance(name, str) or name not in self.tensors:
            raise ExportFormatError(f"the plan names a missing tensor {name!r}")
        return self.tensors[name]

    def _check(self) -> None:
        p = self.plan
        if p.get("format") != PLAN_FORMAT or p.get("format_version") != PLAN_VERSION:
            raise ExportFormatError(
                f"unsupported plan {p.get('format')!r} v{p.get('format_version')!r} "
                f"(this reader: {PLAN_FORMAT} v{PLAN_VERSION})"
            )
        d, c = int(p["n_features"]), int(p["n_classes"])
        w = self._tensor(p["classifier"]["weight"])
        b = self._tensor(p["classifier"]["bias"])
        if w.shape != (c, d) or b.shape != (c,) or len(self.classes) != c:
            raise ExportFormatError("classifier shape, n_classes and labels disagree")
        adapter = p.get("adapter")
        if adapter is not None:
            for layer in adapter["layers"]:
                if layer.get("op") not in ("linear", "batchnorm", "layernorm", "relu"):
                    raise ExportFormatError(f"unknown operation {layer.get('op')!r}")
                for key in ("weight", "bias", "mean", "var"):
                    if key in layer:
                        self._tensor(layer[key])
            if adapter.get("residual"):
                self._tensor(adapter["scale"])

    def _features(self, x: Any) -> Array:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("vectors contain NaN or inf")
        return arr

    def transform(self, x: Any) -> Array:
        """Adapted features z (N, D) (the input itself for lr / lp heads)."""
        f = self._features(x)
        adapter = self.plan.get("adapter")
        if adapter is None:
            return f
        h = f
        for layer in adapter["layers"]:
            op = layer["op"]
            if op == "linear":
                h = h @ self._tensor(layer["weight"]).T + self._tensor(layer["bias"])
            elif op == "batchnorm":
                inv = 1.0 / np.sqrt(self._tensor(layer["var"]) + np.float32(layer["eps"]))
                h = (h - self._tensor(layer["mean"])) * inv.astype(np.float32)
                h = h * self._tensor(layer["weight"]) + self._tensor(layer["bias"])
            elif op == "layernorm":
                mu = h.mean(axis=1, keepdims=True)
                var = ((h - mu) ** 2).mean(axis=1, keepdims=True)
                h = (h - mu) / np.sqrt(var + np.float32(layer["eps"]))
                h = h * self._tensor(layer["weight"]) + self._tensor(layer["bias"])
            else:  # relu
                h = np.maximum(h, np.float32(0.0))
        if adapter.get("residual"):
            return (self._tensor(adapter["scale"]) * h + f).astype(np.float32)
        return h.astype(np.float32)

    def logits(self, x: Any) -> Array:
        z = self.transform(x)
        cls = self.plan["classifier"]
        out: Array = z @ self._tensor(cls["weight"]).T + self._tensor(cls["bias"])
        return out.astype(np.float32)

    def predict_proba(self, x: Any) -> Array:
        """Class probabilities (N, C), columns in ``classes`` order."""
        logits = self.logits(x).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        proba: Array = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return proba

    def predict(self, x: Any) -> list[str | int]:
        """The most probable label of each row."""
        idx = self.logits(x).argmax(axis=1)
        return [self.classes[int(i)] for i in idx]


def _from_files(files: Mapping[str, bytes]) -> OfflineHead:
    try:
        info = json.loads(files["head.json"].decode("utf-8"))
        weights = files["weights.safetensors"]
    except KeyError as exc:
        raise ExportFormatError(f"not an nmtune head export: {exc.args[0]} missing") from exc
    if info.get("format_version") != ARCHIVE_FORMAT_VERSION:
        raise ExportFormatError(f"unsupported export format_version {info.get('format_version')!r}")
    labels = info.get("classes")
    if "labels.json" in files:
        labels = json.loads(files["labels.json"].decode("utf-8"))
    if not isinstance(labels, list):
        raise ExportFormatError("the export has no label list")
    tensors = {k: np.asarray(v, dtype=np.float32) for k, v in st_load(weights).items()}
    return OfflineHead(plan=info["plan"], tensors=tensors, classes=labels, info=info)


_NAMES = ("head.json", "weights.safetensors", "labels.json")


def load_head(source: str | Path | bytes) -> OfflineHead:
    """An exported head from a zip file, its bytes, or a folder it was extracted into."""
    if isinstance(source, bytes | bytearray):
        data = io.BytesIO(bytes(source))
        with zipfile.ZipFile(data) as zf:
            return _from_files({n: zf.read(n) for n in zf.namelist() if n in _NAMES})
    path = Path(str(source))
    if path.is_dir():
        return _from_files({n: (path / n).read_bytes() for n in _NAMES if (path / n).exists()})
    with zipfile.ZipFile(path) as zf:
        return _from_files({n: zf.read(n) for n in zf.namelist() if n in _NAMES})
