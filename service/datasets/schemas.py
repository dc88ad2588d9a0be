from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from nmtune.service.json_types import Metadata

SPLIT_PATTERN = r"^(train|validation|test|(validation:)?ood:[A-Za-z0-9_.\-]{1,64})$"
Label = StrictStr | StrictInt


class Record(BaseModel):
    """One labelled example: `text` for text datasets, `image` (base64) for image datasets."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="Input text (text datasets).")
    image: str | None = Field(
        default=None, description="Base64-encoded image bytes (image datasets)."
    )
    label: Label = Field(
        description="Class label: a string or an integer, the same kind throughout."
    )
    split: str = Field(
        default="train",
        description="`train`, `validation` (optional; else carved from train, or k-fold "
        "cross-validation on small data), `test`, a named out-of-domain split `ood:<name>` "
        "(evaluated only), or `validation:ood:<name>`: labelled target-domain validation data "
        "that, when present, is what selects epochs, lr's C and auto's candidate (never "
        "trained on).",
    )


LongTexts = Literal["reject", "truncate"]

LONG_TEXTS_DESCRIPTION = (
    "What to do with a text longer than the server's `max_text_chars` (NMTUNE_MAX_TEXT_CHARS): "
    "`reject` (default) refuses the dataset with a 422 naming the record; `truncate` keeps its "
    "first `max_text_chars` characters (the backbone truncates at its token limit anyway) and "
    "the dataset's `truncation` records which records were cut and how long they were."
)


class TruncatedRecord(BaseModel):
    position: int = Field(description="Index of the record in the request / file.")
    original_chars: int = Field(description="Its length before truncation.")


class Truncation(BaseModel):
    """Texts cut to ``max_chars`` at creation (``long_texts: truncate``)."""

    max_chars: int
    count: int = Field(description="How many texts were cut.")
    records: list[TruncatedRecord] = Field(
        description="The cut records, in order (the first 1,000 when more were cut)."
    )


class DatasetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "reviews",
                    "records": [
                        {"text": "great film", "label": "pos", "split": "train"},
                        {"text": "dull and slow", "label": "neg", "split": "train"},
                        {"text": "loved it", "label": "pos", "split": "test"},
                        {"text": "what a waste", "label": "neg", "split": "ood:tweets"},
                    ],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, description="A name for the dataset.")
    records: list[Record] = Field(min_length=1, description="The labelled examples.")
    metadata: Metadata = Field(default_factory=dict)
    long_texts: LongTexts = Field(default="reject", description=LONG_TEXTS_DESCRIPTION)


class VectorRecord(BaseModel):
    """One labelled precomputed vector (datasets created from embeddings)."""

    model_config = ConfigDict(extra="forbid")

    embedding: list[float] = Field(
        min_length=1, description="The vector, from the backbone named by `backbone_identity`."
    )
    label: Label = Field(
        description="Class label: a string or an integer, the same kind throughout."
    )
    split: str = Field(default="train", description="As for text records.")
    text: str | None = Field(
        default=None, description="Optional: the input the vector was computed from (kept)."
    )


BACKBONE_IDENTITY_DESCRIPTION = (
    "The identity of the model that computed the vectors, e.g. `openai:text-embedding-3-small` "
    "or the `identity` GET /v1/backbones reports for a configured backbone. Heads trained on "
    "this dataset carry it, and predicting with `embeddings` checks it when the request names "
    "one."
)


class VectorDatasetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "reviews-3small",
                    "backbone": "text-embedding-3-small",
                    "backbone_identity": "openai:text-embedding-3-small",
                    "records": [
                        {"embedding": [0.1, -0.2, 0.3], "label": "pos"},
                        {"embedding": [0.0, 0.4, -0.1], "label": "neg"},
                    ],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200, description="A name for the dataset.")
    backbone: str = Field(
        min_length=1,
        max_length=200,
        description="A name for the model that computed the vectors; a head may name it (or a "
        "configured backbone of the same identity) as its `backbone`.",
    )
    backbone_identity: str = Field(
        min_length=1, max_length=2000, description=BACKBONE_IDENTITY_DESCRIPTION
    )
    records: list[VectorRecord] = Field(min_length=1, description="The labelled vectors.")


class SplitSummary(BaseModel):
    count: int
    labels: dict[str, int] = Field(description="Examples per label in this split.")


class DatasetOut(BaseModel):
    id: str
    name: str
    modality: Literal["text", "image", "vector"] = Field(
        description="`vector`: created from precomputed embeddings (see `backbone_identity`)."
    )
    label_kind: Literal["str", "int"]
    n_examples: int
    classes: list[Label]
    splits: dict[str, SplitSummary]
    metadata: Metadata
    created_at: datetime
    backbone: str | None = Field(default=None, description="Vector datasets: the model's name.")
    backbone_identity: str | None = Field(
        default=None, description="Vector datasets: the identity of the model of the vectors."
    )
    dim: int | None = Field(default=None, description="Vector datasets: the vector dimension.")
    truncation: Truncation | None = Field(
        default=None, description="Texts cut at creation (`long_texts: truncate`); else null."
    )


class DatasetPage(BaseModel):
    items: list[DatasetOut] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
    has_more: bool = Field(description="More datasets follow: pass `next_after` as `after`.")
    next_after: str | None = Field(description="Cursor of the next page, null at the end.")
