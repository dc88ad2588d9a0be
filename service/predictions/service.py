"""Predict with a trained head: vectors in, or inputs embedded through the cache."""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from service.datasets.validation import check_text, decode_image
from service.errors import Conflict, PayloadTooLarge, ValidationFailed
from service.heads import service as heads_service
from service.heads.models import Head
from service.ops import metrics
from service.predictions.schemas import ClassScore, Prediction, PredictRequest, PredictResponse
from tuner import NMTuneClassifier

if TYPE_CHECKING:
    from service.context import AppContext


class HeadCache:
    """LRU of loaded heads: weights are read from SQL and parsed once per head."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, NMTuneClassifier] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, head_id: str) -> NMTuneClassifier | None:
        with self._lock:
            clf = self._items.get(head_id)
            if clf is not None:
                self._items.move_to_end(head_id)
            return clf

    def put(self, head_id: str, clf: NMTuneClassifier) -> None:
        with self._lock:
            self._items[head_id] = clf
            self._items.move_to_end(head_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def forget(self, head_id: str) -> None:
        with self._lock:
            self._items.pop(head_id, None)


def _load(ctx: AppContext, tenant_id: str, head_id: str) -> tuple[Head, NMTuneClassifier]:
    with ctx.db.session() as s:
        head = heads_service.get_head(s, tenant_id, head_id)
        if head.status != "ready":
            raise Conflict(f"head {head_id!r} is {head.status}, not ready", field="head_id")
        clf = ctx.heads.get(head_id)
        if clf is None:
            blob = head.weights
            assert blob is not None
            clf = NMTuneClassifier.from_bytes(blob)
            ctx.heads.put(head_id, clf)
        s.expunge(head)
    return head, clf


def _check_embeddings(rows: list[list[float]], dim: int) -> np.ndarray:
    for i, row in enumerate(rows):
        if len(row) != dim:
            raise ValidationFailed(
                f"embeddings[{i}]: dimension {len(row)}, the head expects {dim}",
                field=f"embeddings[{i}]",
            )
        for j, v in enumerate(row):
            if not math.isfinite(v):
                raise ValidationFailed(
                    f"embeddings[{i}][{j}]: NaN or infinite value", field=f"embeddings[{i}][{j}]"
                )
    return np.asarray(rows, dtype=np.float32)


async def predict(
    ctx: AppContext, tenant_id: str, head_id: str, body: PredictRequest
) -> PredictResponse:
    n = len(body.inputs or body.embeddings or [])
    if n > ctx.settings.max_predict_batch:
        field = "inputs" if body.inputs is not None else "embeddings"
        raise PayloadTooLarge(
            f"{field}: {n} rows, at most {ctx.settings.max_predict_batch}", field=field
        )
    head, clf = await asyncio.to_thread(_load, ctx, tenant_id, head_id)
    if body.embeddings is not None:
        x = _check_embeddings(body.embeddings, int(head.dim or 0))
    else:
        assert body.inputs is not None
        x = await _embed_inputs(ctx, tenant_id, head, body.inputs)
    proba = await asyncio.to_thread(clf.predict_proba, x)  # (n, C)
    metrics.PREDICTIONS.inc(n)
    return PredictResponse(
        head_id=head.id, predictions=_rows(proba, list(clf.classes_), body.top_k)
    )


async def _embed_inputs(
    ctx: AppContext, tenant_id: str, head: Head, inputs: list[str]
) -> np.ndarray:
    from service.backbones.service import get_backend

    backend = await get_backend(ctx, head.backbone, field="inputs")
    if backend.identity != head.backbone_identity:
        raise Conflict(
            f"backbone {head.backbone!r} changed configuration since this head was "
            "trained; send embeddings from the original backbone or retrain",
            field="inputs",
        )
    items: list[str | bytes]
    if backend.modality == "image":
        items = [
            decode_image(v, f"inputs[{i}]", ctx.settings.max_image_bytes)
            for i, v in enumerate(inputs)
        ]
    else:
        items = [
            check_text(v, f"inputs[{i}]", ctx.settings.max_text_chars) for i, v in enumerate(inputs)
        ]
    return await ctx.embed(tenant_id, backend, items)


def _rows(proba: np.ndarray, classes: list[Any], top_k: int | None) -> list[Prediction]:
    labels = [c.item() if hasattr(c, "item") else c for c in classes]
    order = np.argsort(-proba, axis=1, kind="stable")
    k = min(top_k or len(labels), len(labels))
    out = []
    for r in range(proba.shape[0]):
        idx = order[r, :k]
        scores = [ClassScore(label=labels[j], probability=float(proba[r, j])) for j in idx]
        out.append(
            Prediction(label=scores[0].label, probability=scores[0].probability, scores=scores)
        )
    return out
