"""Predict with a trained head: vectors in, or inputs embedded through the cache."""

from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from nmtune.adapters import (
    AdapterError,
    BackendRegistry,
    EmbeddingBackend,
    InputPolicyError,
    RateLimitedError,
    UnavailableError,
)
from nmtune.adapters.tokenizer import get_token_counter
from nmtune.service.backbones.service import get_backend
from nmtune.service.datasets.validation import check_finite, check_text, decode_image
from nmtune.service.db.session import Database
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UpstreamError,
    ValidationFailed,
)
from nmtune.service.heads import service as heads_service
from nmtune.service.heads.models import HeadStatus
from nmtune.service.ops import metrics
from nmtune.service.ops.threads import compute_threads, with_threads
from nmtune.service.predictions.cache import HeadCache, HeadMeta
from nmtune.service.predictions.schemas import (
    ClassifyItem,
    ClassifyRequest,
    ClassifyResponse,
    EmbeddingItem,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbeddingsUsage,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from nmtune.service.settings import Settings
from nmtune.tuner import NMTuneClassifier

INLINE_ROWS = 64
_PREDICTIONS = TypeAdapter(list[Prediction])


def _read_head(
    db: Database, tenant_id: str, head_id: str, with_weights: bool
) -> tuple[HeadMeta, bytes | None]:
    with db.session() as s:
        head = heads_service.get_head(s, tenant_id, head_id)
        meta = HeadMeta(
            head.id,
            head.tenant_id,
            head.status,
            int(head.dim or 0),
            head.backbone,
            head.backbone_identity,
        )
        blob = head.weights if with_weights and head.status == HeadStatus.READY else None
    return meta, blob


async def _load(
    db: Database, head_cache: HeadCache, tenant_id: str, head_id: str
) -> tuple[HeadMeta, NMTuneClassifier]:
    cached = head_cache.meta(head_id)
    clf = head_cache.model(head_id)
    if cached is None or clf is None:
        meta, blob = await asyncio.to_thread(_read_head, db, tenant_id, head_id, clf is None)
        if meta.status == HeadStatus.READY:
            head_cache.put_meta(meta)
        if clf is None and blob is not None:
            clf = await asyncio.to_thread(NMTuneClassifier.from_bytes, blob)
            head_cache.put_model(head_id, clf)
    else:
        meta = cached
    if meta.tenant_id != tenant_id:
        raise NotFound(f"head {head_id!r} not found", field="head_id")
    if meta.status != HeadStatus.READY or clf is None:
        raise Conflict(f"head {head_id!r} is {meta.status}, not ready", field="head_id")
    return meta, clf


def _check_embeddings(rows: list[list[float]], dim: int) -> np.ndarray:
    for i, row in enumerate(rows):
        if len(row) != dim:
            raise ValidationFailed(
                f"embeddings[{i}]: dimension {len(row)}, the head expects {dim}",
                field=f"embeddings[{i}]",
            )
    # one flat pass over the floats (np.asarray on nested lists first walks them to find the
    # shape); (n, dim) float32, values beyond the float32 range become inf
    flat = itertools.chain.from_iterable(rows)
    with np.errstate(over="ignore"):  # the overflow is reported below, naming the cell
        x = np.fromiter(flat, dtype=np.float32, count=len(rows) * dim).reshape(len(rows), dim)
    check_finite(x, lambda i, j: f"embeddings[{i}][{j}]")
    return x


async def predict(
    body: PredictRequest,
    tenant_id: str,
    head_id: str,
    *,
    db: Database,
    registry: BackendRegistry,
    cache: EmbeddingCache,
    head_cache: HeadCache,
    settings: Settings,
) -> PredictResponse:
    n = len(body.inputs or body.embeddings or [])
    if n > settings.max_predict_batch:
        field = "inputs" if body.inputs is not None else "embeddings"
        raise PayloadTooLarge(
            f"{field}: {n} rows, at most {settings.max_predict_batch}", field=field
        )
    head, clf = await _load(db, head_cache, tenant_id, head_id)
    if body.embeddings is not None:
        if body.backbone_identity is not None and body.backbone_identity != head.backbone_identity:
            raise Conflict(
                f"backbone_identity: these embeddings come from {body.backbone_identity!r}, "
                f"the head was trained on vectors of {head.backbone_identity!r}",
                field="backbone_identity",
            )
        x = _check_embeddings(body.embeddings, head.dim)
    else:
        assert body.inputs is not None
        backend = await _head_backend(registry, head, "inputs")
        items = _check_inputs(backend, head, body.inputs, settings)
        x = await _embed(cache, tenant_id, backend, items, "inputs")
    if x.shape[0] <= INLINE_ROWS:  # a few rows: cheaper than a thread hop
        proba = clf.predict_proba(x)  # (n, C)
    else:
        threads = compute_threads(settings.compute_torch_threads)
        proba = await asyncio.to_thread(with_threads(threads, lambda: clf.predict_proba(x)))
    metrics.PREDICTIONS.inc(n)
    return PredictResponse(
        head_id=head.id, predictions=_rows(proba, list(clf.classes_), body.top_k)
    )


async def _head_backend(registry: BackendRegistry, head: HeadMeta, field: str) -> EmbeddingBackend:
    """The backbone that embeds raw inputs for ``head``; 422 naming ``field`` when it is not
    a configured one (a head trained on uploaded vectors: only their embeddings work)."""
    if head.backbone not in registry.names():
        raise ValidationFailed(
            f"{field}: this head's backbone {head.backbone!r} is not configured on this "
            "server (a head trained on uploaded vectors), so it cannot embed raw inputs; send "
            "`embeddings` from the same model instead",
            field=field,
        )
    return await get_backend(registry, head.backbone, field=field)


def _check_inputs(
    backend: EmbeddingBackend, head: HeadMeta, inputs: list[str], settings: Settings
) -> list[str | bytes]:
    if backend.identity != head.backbone_identity:
        raise Conflict(
            f"backbone {head.backbone!r} changed configuration since this head was "
            "trained; send embeddings from the original backbone or retrain",
            field="inputs",
        )
    items: list[str | bytes]
    if backend.modality == "image":
        items = [
            decode_image(v, f"inputs[{i}]", settings.max_image_bytes) for i, v in enumerate(inputs)
        ]
    else:
        items = [
            check_text(v, f"inputs[{i}]", settings.max_text_chars) for i, v in enumerate(inputs)
        ]
    return items


async def _embed(
    cache: EmbeddingCache,
    tenant_id: str,
    backend: EmbeddingBackend,
    items: list[str | bytes],
    field: str,
) -> np.ndarray:
    """Embed through the cache; the backend's errors as API errors, never a 500: an input
    over the backbone's limits (token limit with ``input_policy: reject``) -> 422 naming it;
    the backbone rate-limited or down -> 503 with Retry-After; anything else -> 502."""
    try:
        return await cache.embed(tenant_id, backend, items)
    except InputPolicyError as exc:
        where = f"{field}[{exc.index}]"
        raise ValidationFailed(
            f"{where}: {exc.reason} (backbone {backend.name!r})", field=where
        ) from None
    except RateLimitedError as exc:
        raise ServiceUnavailable(
            f"backbone {backend.name!r} is rate limited; retry later",
            retry_after=exc.retry_after or 5.0,
        ) from None
    except UnavailableError as exc:
        raise ServiceUnavailable(
            f"backbone {backend.name!r} is unavailable ({exc}); retry later", retry_after=5.0
        ) from None
    except AdapterError as exc:
        raise UpstreamError(f"backbone {backend.name!r} failed: {type(exc).__name__}") from None


def _rows(proba: np.ndarray, classes: list[Any], top_k: int | None) -> list[Prediction]:
    labels = [c.item() if hasattr(c, "item") else c for c in classes]
    k = min(top_k or len(labels), len(labels))
    # Python ints and floats in one call each (indexing numpy cell by cell costs more), and
    # the models built and validated by pydantic-core in one call rather than one per score
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k].tolist()
    probs = proba.tolist()
    rows: list[dict[str, Any]] = []
    for idx, row in zip(order, probs, strict=True):
        scores = [{"label": labels[j], "probability": row[j]} for j in idx]
        rows.append({"label": labels[idx[0]], "probability": row[idx[0]], "scores": scores})
    return _PREDICTIONS.validate_python(rows)


async def adapted_embeddings(
    body: EmbeddingsRequest,
    tenant_id: str,
    *,
    db: Database,
    registry: BackendRegistry,
    cache: EmbeddingCache,
    head_cache: HeadCache,
    settings: Settings,
) -> EmbeddingsResponse:
    """OpenAI's /v1/embeddings with `model` = a head: the head's adapted features z of the
    inputs (embedded by its backbone through the cache), in OpenAI's response format."""
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts:
        raise ValidationFailed("input: give at least one text", field="input")
    if len(texts) > settings.max_predict_batch:
        raise PayloadTooLarge(
            f"input: {len(texts)} texts, at most {settings.max_predict_batch}", field="input"
        )
    try:
        head, clf = await _load(db, head_cache, tenant_id, body.model)
    except (NotFound, Conflict) as exc:
        raise type(exc)(exc.detail.removeprefix("head_id: "), field="model") from exc
    if body.dimensions is not None and body.dimensions != head.dim:
        raise ValidationFailed(
            f"dimensions: the head's features have {head.dim} dimensions, not {body.dimensions}",
            field="dimensions",
        )
    backend = await _head_backend(registry, head, "input")
    if backend.modality != "text":
        raise ValidationFailed("input: this head's backbone embeds images", field="input")
    items = _check_inputs(backend, head, texts, settings)
    x = await _embed(cache, tenant_id, backend, items, "input")
    threads = compute_threads(settings.compute_torch_threads)
    z = await asyncio.to_thread(with_threads(threads, lambda: clf.transform(x)))  # (n, D)
    z = np.ascontiguousarray(z, dtype="<f4")
    data = [
        EmbeddingItem(
            index=i,
            embedding=base64.b64encode(row.tobytes()).decode("ascii")
            if body.encoding_format == "base64"
            else row.tolist(),
        )
        for i, row in enumerate(z)
    ]
    tokens = sum(get_token_counter("cl100k_base").count(texts))
    metrics.PREDICTIONS.inc(len(texts))
    return EmbeddingsResponse(
        data=data,
        model=body.model,
        usage=EmbeddingsUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


async def classify_texts(
    body: ClassifyRequest,
    tenant_id: str,
    *,
    db: Database,
    registry: BackendRegistry,
    cache: EmbeddingCache,
    head_cache: HeadCache,
    settings: Settings,
) -> ClassifyResponse:
    """Plain texts -> labels and probabilities of the head in `model` (POST /v1/classify)."""
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts:
        raise ValidationFailed("input: give at least one text", field="input")
    request = PredictRequest(inputs=texts, top_k=body.top_k)
    try:
        out = await predict(
            request,
            tenant_id,
            body.model,
            db=db,
            registry=registry,
            cache=cache,
            head_cache=head_cache,
            settings=settings,
        )
    except (NotFound, Conflict, ValidationFailed, PayloadTooLarge) as exc:
        field = exc.field or ""
        new = "model" if field == "head_id" else field.replace("inputs", "input", 1) or None
        detail = exc.detail.removeprefix(f"{field}: ") if field else exc.detail
        raise type(exc)(detail, field=new) from exc
    tokens = sum(get_token_counter("cl100k_base").count(texts))
    return ClassifyResponse(
        data=[
            ClassifyItem(index=i, label=p.label, score=p.probability, scores=p.scores)
            for i, p in enumerate(out.predictions)
        ],
        model=body.model,
        usage=EmbeddingsUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
