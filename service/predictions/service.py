"""Predict with a trained head: vectors in, or inputs embedded through the cache."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from service.datasets.validation import check_text, decode_image
from service.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from service.heads import service as heads_service
from service.ops import metrics
from service.ops.threads import compute_threads, with_threads
from service.predictions.schemas import ClassScore, Prediction, PredictRequest, PredictResponse
from service.ttl_cache import TTLCache
from tuner import NMTuneClassifier

INLINE_ROWS = 64

if TYPE_CHECKING:
    from service.context import AppContext


@dataclass(frozen=True)
class HeadMeta:
    id: str
    tenant_id: str
    status: str
    dim: int
    backbone: str
    backbone_identity: str


class HeadCache:
    """Loaded heads: parsed weights in an LRU (immutable once trained) and the head row's
    metadata for ``ttl_s`` seconds, so a warm predict reads nothing from SQL."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self.size = size
        self._models: OrderedDict[str, NMTuneClassifier] = OrderedDict()
        self._meta: TTLCache[str, HeadMeta] = TTLCache(max(size * 8, 64), ttl_s)
        self._lock = threading.Lock()

    def model(self, head_id: str) -> NMTuneClassifier | None:
        with self._lock:
            clf = self._models.get(head_id)
            if clf is not None:
                self._models.move_to_end(head_id)
            return clf

    def put_model(self, head_id: str, clf: NMTuneClassifier) -> None:
        with self._lock:
            self._models[head_id] = clf
            self._models.move_to_end(head_id)
            while len(self._models) > self.size:
                self._models.popitem(last=False)

    def meta(self, head_id: str) -> HeadMeta | None:
        return self._meta.get(head_id)

    def put_meta(self, meta: HeadMeta) -> None:
        self._meta.put(meta.id, meta)

    def forget(self, head_id: str) -> None:
        self._meta.pop(head_id)
        with self._lock:
            self._models.pop(head_id, None)


def _read_head(
    ctx: AppContext, tenant_id: str, head_id: str, with_weights: bool
) -> tuple[HeadMeta, bytes | None]:
    with ctx.db.session() as s:
        head = heads_service.get_head(s, tenant_id, head_id)
        meta = HeadMeta(
            head.id,
            head.tenant_id,
            head.status,
            int(head.dim or 0),
            head.backbone,
            head.backbone_identity,
        )
        blob = head.weights if with_weights and head.status == "ready" else None
    return meta, blob


async def _load(ctx: AppContext, tenant_id: str, head_id: str) -> tuple[HeadMeta, NMTuneClassifier]:
    cached = ctx.heads.meta(head_id)
    clf = ctx.heads.model(head_id)
    if cached is None or clf is None:
        meta, blob = await asyncio.to_thread(_read_head, ctx, tenant_id, head_id, clf is None)
        if meta.status == "ready":
            ctx.heads.put_meta(meta)
        if clf is None and blob is not None:
            clf = await asyncio.to_thread(NMTuneClassifier.from_bytes, blob)
            ctx.heads.put_model(head_id, clf)
    else:
        meta = cached
    if meta.tenant_id != tenant_id:
        raise NotFound(f"head {head_id!r} not found", field="head_id")
    if meta.status != "ready" or clf is None:
        raise Conflict(f"head {head_id!r} is {meta.status}, not ready", field="head_id")
    return meta, clf


def _check_embeddings(rows: list[list[float]], dim: int) -> np.ndarray:
    for i, row in enumerate(rows):
        if len(row) != dim:
            raise ValidationFailed(
                f"embeddings[{i}]: dimension {len(row)}, the head expects {dim}",
                field=f"embeddings[{i}]",
            )
    x = np.asarray(rows, dtype=np.float32)  # (n, dim); values beyond float32 become inf
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValidationFailed(
            f"embeddings[{i}][{j}]: NaN, infinite or beyond the float32 range",
            field=f"embeddings[{i}][{j}]",
        )
    return x


async def predict(
    ctx: AppContext, tenant_id: str, head_id: str, body: PredictRequest
) -> PredictResponse:
    n = len(body.inputs or body.embeddings or [])
    if n > ctx.settings.max_predict_batch:
        field = "inputs" if body.inputs is not None else "embeddings"
        raise PayloadTooLarge(
            f"{field}: {n} rows, at most {ctx.settings.max_predict_batch}", field=field
        )
    head, clf = await _load(ctx, tenant_id, head_id)
    if body.embeddings is not None:
        x = _check_embeddings(body.embeddings, head.dim)
    else:
        assert body.inputs is not None
        x = await _embed_inputs(ctx, tenant_id, head, body.inputs)
    if x.shape[0] <= INLINE_ROWS:  # a few rows: cheaper than a thread hop
        proba = clf.predict_proba(x)  # (n, C)
    else:
        threads = compute_threads(ctx.settings.compute_torch_threads)
        proba = await asyncio.to_thread(with_threads(threads, lambda: clf.predict_proba(x)))
    metrics.PREDICTIONS.inc(n)
    return PredictResponse(
        head_id=head.id, predictions=_rows(proba, list(clf.classes_), body.top_k)
    )


async def _embed_inputs(
    ctx: AppContext, tenant_id: str, head: HeadMeta, inputs: list[str]
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
