"""Local text backbones: sentence-transformers models and plain transformers + pooling."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import TEXT_PREPROCESSING_VERSION, FloatMatrix
from .config import SentenceTransformersConfig, TransformersConfig
from .local import LocalBackend, import_extra


class SentenceTransformersBackend(LocalBackend):
    kind = "sentence-transformers"

    def __init__(self, config: SentenceTransformersConfig) -> None:
        self.st_config = config
        super().__init__(config)

    def _identity_fields(self) -> dict[str, Any]:
        c = self.st_config
        return {
            "provider": "sentence-transformers",
            "model": self._model_label(),
            "revision": self._revision,
            "max_seq_length": c.max_seq_length,
            "normalize": c.normalize,
            "prefix": c.prefix,
            "truncation": "model-max-seq-length",
            "preprocessing": TEXT_PREPROCESSING_VERSION,
        }

    def _load(self) -> None:
        st = import_extra("sentence_transformers", self.extra)
        model = st.SentenceTransformer(self._resolved, device=self.device)
        if self.st_config.max_seq_length is not None:
            model.max_seq_length = self.st_config.max_seq_length
        model.eval()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        self._dim = int(getter())
        self._model = model

    def _encode(self, inputs: list[Any], offset: int) -> FloatMatrix:
        texts = [self.st_config.prefix + t for t in inputs] if self.st_config.prefix else inputs
        out = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


class TransformersBackend(LocalBackend):
    """AutoModel + AutoTokenizer with attention-mask mean pooling (or CLS)."""

    kind = "transformers"

    def __init__(self, config: TransformersConfig) -> None:
        self.tf_config = config
        super().__init__(config)

    def _identity_fields(self) -> dict[str, Any]:
        c = self.tf_config
        return {
            "provider": "transformers",
            "model": self._model_label(),
            "revision": self._revision,
            "pooling": c.pooling,
            "max_seq_length": c.max_seq_length,
            "normalize": c.normalize,
            "prefix": c.prefix,
            "truncation": "max-seq-length",
            "preprocessing": TEXT_PREPROCESSING_VERSION,
        }

    def _load(self) -> None:
        tr = import_extra("transformers", self.extra)
        import_extra("torch", self.extra)
        self._tokenizer = tr.AutoTokenizer.from_pretrained(self._resolved)
        model = tr.AutoModel.from_pretrained(self._resolved).to(self.device)
        model.eval()
        self._dim = int(model.config.hidden_size)
        self._model = model

    def _encode(self, inputs: list[Any], offset: int) -> FloatMatrix:
        import torch

        c = self.tf_config
        texts = [c.prefix + t for t in inputs] if c.prefix else inputs
        enc = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=c.max_seq_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
            if c.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return np.asarray(pooled.float().cpu().numpy(), dtype=np.float32)
