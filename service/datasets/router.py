from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from nmtune.service.datasets import service
from nmtune.service.datasets.files import parse_metadata_form, parse_upload
from nmtune.service.datasets.schemas import (
    BACKBONE_IDENTITY_DESCRIPTION,
    LONG_TEXTS_DESCRIPTION,
    DatasetCreate,
    DatasetOut,
    DatasetPage,
    LongTexts,
    VectorDatasetCreate,
)
from nmtune.service.datasets.vectors import (
    VectorTable,
    is_arrow,
    parse_arrow,
    parse_meta,
    parse_npy,
)
from nmtune.service.deps import Ctx, TenantId
from nmtune.service.errors import ERROR_RESPONSES, PayloadTooLarge, ValidationFailed
from nmtune.service.json_types import METADATA_MAX_BYTES

AFTER = "Cursor: the `next_after` of the previous page (offset then counts from it)."

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
VECTOR_UPLOAD_PATH = "/v1/datasets/vectors/upload"


@router.post("", status_code=201, summary="Create a dataset from JSON records")
def create_dataset(body: DatasetCreate, ctx: Ctx, tenant: TenantId) -> DatasetOut:
    """Store labelled records (text or base64 images) with their splits.

    Validated as a whole before anything is written: splits, labels (all strings or all
    integers; every non-train label must appear in train; at least two classes with enough
    training examples each), text length (or truncation, with `long_texts: truncate`), image
    encoding.
    """
    with ctx.db.session() as s:
        return service.create_dataset(
            s, ctx.settings, tenant, body.name, body.records, body.metadata, body.long_texts
        )


@router.post("/upload", status_code=201, summary="Create a dataset from a JSONL or CSV file")
async def upload_dataset(
    ctx: Ctx,
    tenant: TenantId,
    file: Annotated[
        UploadFile,
        File(
            description="JSONL (one record per line) or CSV with columns text|image,label[,split]."
        ),
    ],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    metadata: Annotated[
        str | None,
        Form(
            max_length=METADATA_MAX_BYTES * 2,
            description="The dataset's `metadata` as a JSON object (see DatasetCreate).",
        ),
    ] = None,
    long_texts: Annotated[LongTexts, Form(description=LONG_TEXTS_DESCRIPTION)] = "reject",
) -> DatasetOut:
    """Same checks as the JSON route; errors name the line at fault."""
    meta = parse_metadata_form(metadata)
    data = await file.read(ctx.settings.max_request_bytes + 1)
    if len(data) > ctx.settings.max_request_bytes:
        raise PayloadTooLarge("file: larger than the request limit", field="file")

    def _store() -> DatasetOut:  # parsing too runs in the thread, never on the event loop
        records = parse_upload(file.filename, file.content_type, data)
        with ctx.db.session() as s:
            return service.create_dataset(s, ctx.settings, tenant, name, records, meta, long_texts)

    return await to_thread.run_sync(_store)


@router.post(
    "/vectors", status_code=201, summary="Create a dataset from precomputed vectors (JSON)"
)
def create_vector_dataset(body: VectorDatasetCreate, ctx: Ctx, tenant: TenantId) -> DatasetOut:
    """Labelled vectors from a declared backbone: heads train on them at once, with no
    backbone call. Same label and split rules as text datasets; every vector must have the
    first one's dimension and finite values. For large sets use `/v1/datasets/vectors/upload`.
    """
    with ctx.db.session() as s:
        return service.create_vector_dataset_json(s, ctx.settings, tenant, body)


@router.post(
    "/vectors/upload",
    status_code=201,
    summary="Create a dataset from precomputed vectors (binary .npy or Parquet / Arrow file)",
)
async def upload_vector_dataset(
    ctx: Ctx,
    tenant: TenantId,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    backbone: Annotated[
        str, Form(min_length=1, max_length=200, description="A name for the vectors' model.")
    ],
    backbone_identity: Annotated[
        str, Form(min_length=1, max_length=2000, description=BACKBONE_IDENTITY_DESCRIPTION)
    ],
    vectors: Annotated[
        UploadFile | None,
        File(description=".npy float array (rows, dim), one row per record, in order."),
    ] = None,
    records: Annotated[
        UploadFile | None,
        File(description="With `vectors`: JSONL or CSV with `label` and optional `split`, `text`."),
    ] = None,
    file: Annotated[
        UploadFile | None,
        File(
            description="Instead of vectors + records: one Parquet / Arrow IPC table with "
            "columns `embedding` (list of floats), `label`, optional `split`, `text` "
            "(needs the optional `arrow` extra)."
        ),
    ] = None,
) -> DatasetOut:
    """The body limit of this route is `max_vector_upload_bytes` (the others keep
    `max_request_bytes`); files are read from the spooled upload, not copied into memory
    first."""
    if file is not None:
        if vectors is not None or records is not None:
            raise ValidationFailed(
                "file: give either `file` or `vectors` + `records`", field="file"
            )
        if not is_arrow(file.filename):
            raise ValidationFailed(
                "file: expected a .parquet, .arrow or .feather file", field="file"
            )
        fileobj = file.file
        table = await to_thread.run_sync(lambda: parse_arrow(fileobj, file.filename))
    else:
        if vectors is None or records is None:
            raise ValidationFailed(
                "vectors: give `vectors` (.npy) and `records` (JSONL / CSV), or one `file`",
                field="vectors" if vectors is None else "records",
            )
        meta_bytes = await records.read(ctx.settings.max_request_bytes + 1)
        if len(meta_bytes) > ctx.settings.max_request_bytes:
            raise PayloadTooLarge("records: larger than the request limit", field="records")
        vec_file, meta_name, meta_type = vectors.file, records.filename, records.content_type

        def _parse() -> VectorTable:  # in a worker thread, not on the event loop
            x = parse_npy(vec_file)
            meta = parse_meta(meta_name, meta_type, meta_bytes)
            return VectorTable(x=x, labels=meta.labels, splits=meta.splits, texts=meta.texts)

        table = await to_thread.run_sync(_parse)

    def _store() -> DatasetOut:
        with ctx.db.session() as s:
            return service.create_vector_dataset(
                s, ctx.settings, tenant, name, backbone, backbone_identity, table
            )

    return await to_thread.run_sync(_store)


@router.get("", summary="List datasets")
def list_datasets(
    ctx: Ctx,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    after: Annotated[str | None, Query(min_length=1, max_length=80, description=AFTER)] = None,
) -> DatasetPage:
    with ctx.db.session() as s:
        return service.list_datasets(s, tenant, limit, offset, after)


@router.get("/{dataset_id}", summary="Get a dataset with counts per split and label")
def get_dataset(dataset_id: str, ctx: Ctx, tenant: TenantId) -> DatasetOut:
    with ctx.db.session() as s:
        return service.to_out(service.get_dataset(s, tenant, dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    summary="Delete a dataset and its examples",
    responses={409: ERROR_RESPONSES[404] | {"description": "Used by an unfinished job."}},
)
def delete_dataset(dataset_id: str, ctx: Ctx, tenant: TenantId) -> Response:
    """Heads trained on it keep working (they hold their own weights)."""
    with ctx.db.session() as s:
        service.delete_dataset(s, tenant, dataset_id)
    return Response(status_code=204)
