from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from service.json_types import Metadata

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


class SplitSummary(BaseModel):
    count: int
    labels: dict[str, int] = Field(description="Examples per label in this split.")


class DatasetOut(BaseModel):
    id: str
    name: str
    modality: Literal["text", "image"]
    label_kind: Literal["str", "int"]
    n_examples: int
    classes: list[Label]
    splits: dict[str, SplitSummary]
    metadata: Metadata
    created_at: datetime


class DatasetPage(BaseModel):
    items: list[DatasetOut] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
    has_more: bool = Field(description="More datasets follow: pass `next_after` as `after`.")
    next_after: str | None = Field(description="Cursor of the next page, null at the end.")
