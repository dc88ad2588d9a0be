"""A head as a framework-free program: named float32 tensors + a JSON plan of operations.

``export_head`` walks a fitted head module and writes what a reader needs to run it with
nothing but numpy (``nmtune.load_head`` does): the adapter's layers in order (linear,
batchnorm in eval form, layernorm, relu), the residual scale, and the classifier. The plan
names every tensor it uses; the tensors are returned as numpy float32 arrays to be stored
as safetensors. ``export_onnx`` writes the same head as an ONNX graph (inputs ``features``
(N, D) float32; outputs ``probabilities`` (N, C), ``logits`` (N, C), ``adapted`` (N, D)).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nmtune.tuner.heads import HeadModule, LinearHead, NMTuneHead

__all__ = ["PLAN_FORMAT", "PLAN_VERSION", "export_head", "export_onnx"]

PLAN_FORMAT = "nmtune-head-plan"
PLAN_VERSION = 1


def _np(t: torch.Tensor) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


def export_head(model: HeadModule) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, Any]]:
    """(tensors, plan) of a head module (in eval form; the module itself is not changed).

    The plan: ``{"format", "format_version", "n_features", "n_classes", "adapter":
    {"layers": [...], "residual": bool, "scale": name | None} | None, "classifier":
    {"weight", "bias"}}``; ``logits = adapted @ weight.T + bias``, probabilities by softmax.
    """
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    adapter: dict[str, Any] | None = None
    if isinstance(model, NMTuneHead):
        layers: list[dict[str, Any]] = []
        for i, layer in enumerate(model.mlp):
            p = f"adapter.{i}"
            if isinstance(layer, nn.Linear):
                tensors[f"{p}.weight"] = _np(layer.weight)
                tensors[f"{p}.bias"] = _np(layer.bias)
                layers.append({"op": "linear", "weight": f"{p}.weight", "bias": f"{p}.bias"})
            elif isinstance(layer, nn.BatchNorm1d):
                assert layer.running_mean is not None and layer.running_var is not None
                # eval form: y = (x - mean) / sqrt(var + eps) * weight + bias
                tensors[f"{p}.mean"] = _np(layer.running_mean)
                tensors[f"{p}.var"] = _np(layer.running_var)
                tensors[f"{p}.weight"] = _np(layer.weight)
                tensors[f"{p}.bias"] = _np(layer.bias)
                layers.append(
                    {
                        "op": "batchnorm",
                        "mean": f"{p}.mean",
                        "var": f"{p}.var",
                        "weight": f"{p}.weight",
                        "bias": f"{p}.bias",
                        "eps": float(layer.eps),
                    }
                )
            elif isinstance(layer, nn.LayerNorm):
                tensors[f"{p}.weight"] = _np(layer.weight)
                tensors[f"{p}.bias"] = _np(layer.bias)
                layers.append(
                    {
                        "op": "layernorm",
                        "weight": f"{p}.weight",
                        "bias": f"{p}.bias",
                        "eps": float(layer.eps),
                    }
                )
            elif isinstance(layer, nn.ReLU):
                layers.append({"op": "relu"})
            else:
                raise ValueError(f"cannot export layer {type(layer).__name__}")
        scale = None
        if model.residual:
            tensors["adapter.scale"] = _np(model.scale)
            scale = "adapter.scale"
        adapter = {"layers": layers, "residual": bool(model.residual), "scale": scale}
    elif not isinstance(model, LinearHead):
        raise ValueError(f"cannot export head {type(model).__name__}")
    tensors["classifier.weight"] = _np(model.classifier.weight)  # (C, D)
    tensors["classifier.bias"] = _np(model.classifier.bias)  # (C,)
    c, d = tensors["classifier.weight"].shape
    plan = {
        "format": PLAN_FORMAT,
        "format_version": PLAN_VERSION,
        "n_features": int(d),
        "n_classes": int(c),
        "adapter": adapter,
        "classifier": {"weight": "classifier.weight", "bias": "classifier.bias"},
    }
    return tensors, plan


class _OnnxHead(nn.Module):
    def __init__(self, head: HeadModule) -> None:
        super().__init__()
        self.head = head

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, z = self.head(f)
        return torch.softmax(logits, dim=1), logits, z


def export_onnx(model: HeadModule, n_features: int, opset: int = 17) -> bytes:
    """ONNX bytes of the head in eval form (needs the ``onnx`` package; the legacy
    TorchScript exporter, so nothing is downloaded). The batch dimension is dynamic."""
    was_training = model.training
    model.eval()
    try:
        wrapper = _OnnxHead(model).eval()
        buf = io.BytesIO()
        example = torch.zeros((2, n_features), dtype=torch.float32)
        with torch.no_grad(), warnings.catch_warnings():
            # the legacy exporter is deprecated in favour of dynamo (which needs onnxscript);
            # it still exports these plain layers exactly and offline
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper,
                (example,),
                buf,  # type: ignore[arg-type]  # a binary file object is accepted
                input_names=["features"],
                output_names=["probabilities", "logits", "adapted"],
                dynamic_axes={
                    "features": {0: "n"},
                    "probabilities": {0: "n"},
                    "logits": {0: "n"},
                    "adapted": {0: "n"},
                },
                opset_version=opset,
                dynamo=False,
            )
        return buf.getvalue()
    finally:
        model.train(was_training)
