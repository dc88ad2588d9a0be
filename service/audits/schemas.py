from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from nmtune.service.audits.models import AuditStatus
from nmtune.service.jobs.schemas import JobOut
from nmtune.service.json_types import Scalar

AuditSort = Literal["-score", "score", "position", "-position"]


class AuditCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"backbone": "minilm", "splits": ["train"], "folds": 5}]},
    )

    backbone: str = Field(
        min_length=1,
        max_length=200,
        description="A configured backbone (GET /v1/backbones); for a vector dataset, the "
        "backbone it declares (its own stored vectors are audited, no backbone call).",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["train"],
        min_length=1,
        max_length=50,
        description="Splits whose labels are audited together (default: train).",
    )
    method: Literal["auto", "confident_learning", "cleaned"] = Field(
        default="auto",
        description="confident_learning: out-of-fold probabilities of a cross-validated "
        "logistic regression, per-class thresholds, calibrated confident joint (Northcutt et "
        "al., JAIR 2021). cleaned: the same plus one cleaning round (flagged rows left out "
        "of the training folds, probabilities recomputed). auto (default): the recommended "
        "method, today confident_learning.",
    )
    score: Literal["self_confidence", "margin"] = Field(
        default="self_confidence",
        description="Ranking score: 1 - p(given label) (default), or (1 + normalised "
        "margin) / 2 (the same ranking with two classes; ranked worse with many classes on "
        "the dev data).",
    )
    folds: int = Field(default=5, ge=2, le=20, description="k of the out-of-fold k-fold split.")
    repeats: int = Field(default=2, ge=1, le=10, description="Fold assignments averaged.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class ClassSummary(BaseModel):
    label: StrictStr | StrictInt
    n: int
    n_flagged: int
    threshold: float = Field(description="Mean out-of-fold p(class) over rows labelled so.")
    estimated_noise_rate: float = Field(description="Estimated share of wrong labels in class.")


class AuditSummary(BaseModel):
    n_examples: int
    n_flagged: int
    estimated_noise_rate: float = Field(
        description="1 - trace of the estimated joint (given x true) label distribution."
    )
    noise_estimate: Literal["anchors", "confident_joint"] = Field(
        default="confident_joint",
        description=(
            "How the joint was estimated: 'anchors' (each class's surest out-of-fold rows "
            "give p(given | true); audits made since 2026-12-07) or 'confident_joint' "
            "(confident learning's calibrated counts; older audits)."
        ),
    )
    flagged_rate: float
    agreement: float | None = Field(
        default=None,
        description=(
            "Share of examples whose most probable class out of fold is their given label "
            "(null for audits before 2026-12-07). Low agreement means classes overlap in the "
            "embedding: the noise estimate and the flags then run high."
        ),
    )
    classes: list[StrictStr | StrictInt]
    per_class: list[ClassSummary]
    joint: list[list[float]] = Field(description="Q[given][true], sums to 1.")
    confident_joint: list[list[int]] = Field(
        description="Confident learning's counts C[given][true] (not calibrated)."
    )
    transition: list[list[float]] | None = Field(
        default=None,
        description=(
            "T[true][given] = p(given | true), rows sum to 1: the anchor estimate behind "
            "'joint' (null for older audits)."
        ),
    )
    method: str
    score: str
    folds: int
    repeats: int
    c: float = Field(description="C of the logistic regression (chosen by CV).")


class AuditExample(BaseModel):
    position: int = Field(description="The example's position in the dataset (0-based).")
    split: str
    text: str | None = Field(description="The text (null for images).")
    image_sha256: str | None = Field(description="For images: the sha256 of the image bytes.")
    given: StrictStr | StrictInt = Field(description="The label in the dataset.")
    suggested: StrictStr | StrictInt = Field(description="Most probable class out of fold.")
    score: float = Field(description="Higher = more likely mislabelled (a ranking, in [0, 1]).")
    flagged: bool


class ExamplePage(BaseModel):
    items: list[AuditExample]
    total: int
    limit: int
    offset: int
    sort: AuditSort
    flagged_only: bool


class AuditOut(BaseModel):
    id: str
    dataset_id: str
    backbone: str
    splits: list[str]
    options: dict[str, Scalar] = Field(
        description="The audit's options: method, score, folds, repeats, seed."
    )
    status: AuditStatus
    summary: AuditSummary | None = Field(description="Set once the audit is ready.")
    job_id: str | None
    created_at: datetime
    finished_at: datetime | None


class AuditDetail(AuditOut):
    examples: ExamplePage | None = Field(description="A page of audited examples (when ready).")


class AuditCreated(BaseModel):
    audit: AuditOut
    job: JobOut


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int
