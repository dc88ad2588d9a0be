from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from nmtune.service.heads.models import HeadStatus
from nmtune.service.heads.records import (
    HeadConfigOut,
    Label,
    OodAverage,
    SplitMetrics,
    SplitSpectra,
)
from nmtune.service.jobs.schemas import JobOut
from nmtune.service.json_types import Metadata, Overrides
from nmtune.tuner import DEFAULT_PRESET, METHODS


def _known_method(value: str) -> str:
    if value not in METHODS:
        raise ValueError(f"unknown method {value!r}; valid methods: {', '.join(METHODS)}")
    return value


#: the tuner's methods (tuner.METHODS is the one list; a new method needs no change here)
Method = Annotated[
    str, AfterValidator(_known_method), Field(json_schema_extra={"enum": list(METHODS)})
]


class HeadCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "ds_0123",
                    "backbone": "minilm",
                    "method": "nmtune",
                    "preset": "robust",
                    "overrides": {"epochs": 20},
                    "seed": 0,
                }
            ]
        },
    )

    dataset_id: str = Field(min_length=1, max_length=80, description="Dataset to train on.")
    backbone: str = Field(
        min_length=1,
        max_length=200,
        description="Name of a configured backbone (GET /v1/backbones).",
    )
    method: Method = Field(
        default="nmtune",
        description="lr (multinomial logistic regression solved to convergence, L2 strength "
        "by 5-fold CV, like scikit-learn's LogisticRegressionCV), lp (linear probe trained by "
        "SGD as in the paper), mlp (MLP tuning baseline), nmtune, or auto: scores lr, nmtune "
        "grown from lr (robust, 1x wide) and the paper's nmtune (from 256 examples per class) "
        "by repeated stratified k-fold CV on small data (the validation split on large data, "
        "labelled target-domain validation data when the dataset has `validation:ood:<name>` "
        "splits) and keeps the simplest candidate within one standard error of the best "
        "(override `auto_rule`: one-se, best), within `auto_time_budget_s` (default 300 s: a "
        "candidate after lr projected to end past it stops, listed as `over_budget`).",
    )
    preset: str = Field(
        default=DEFAULT_PRESET,
        max_length=40,
        description="Hyper-parameter preset: robust (default: the head starts at the "
        "cross-validated logistic regression, residual scale 0, feature dropout 0.5, 10 "
        "epochs with a floor of 100 optimiser steps, and only moves away from it where "
        "validation says so), paper-code (the paper's "
        "released code, trained from scratch) or paper-text (0.01 on each regulariser). "
        "Ignored by method lr.",
    )
    overrides: Overrides = Field(
        default_factory=dict,
        description="Hyper-parameters that replace the preset's (e.g. epochs, lr, w_mse, w_cov, "
        "w_svd, svd_top_k, residual_init, zero_init_branch, feature_dropout, batch_size; loss: "
        "ce, or the "
        "noise-robust gce / sce with gce_q, sce_alpha, sce_beta); unknown names are "
        "rejected with the field at fault.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    name: str = Field(default="", max_length=200)
    metadata: Metadata = Field(default_factory=dict)
    audit_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="A ready label audit of this dataset (POST /v1/datasets/{id}/audit) to "
        "train through: see `audit_use`. The head's `config.audit` records what was done.",
    )
    audit_use: Literal["auto", "exclude_flagged"] = Field(
        default="auto",
        description="How to train through the audit. exclude_flagged: the audit's flagged "
        "train / validation examples are left out of training and selection (test and ood "
        "splits are still evaluated in full). auto (default): a nested cross-validation "
        "(each fold's training rows audited on their own, a logistic regression trained "
        "with and without that audit's flagged rows, both scored on the held-out rows' "
        "given labels) decides between exclude_flagged and training on every row; "
        "`config.audit` records the choice and both scores. Combine with a noise-robust loss "
        "override (`loss`: gce or sce) if wanted. With method auto the head's CV also scores "
        "a linear probe grown from lr and trained with the generalized cross entropy "
        "(`auto_noise_robust`, on by default through an audit; set it false in `overrides` "
        "to leave it out).",
    )


class HeadOut(BaseModel):
    id: str
    name: str
    dataset_id: str | None
    backbone: str
    backbone_identity: str
    method: Method
    preset: str
    overrides: Overrides
    seed: int
    status: HeadStatus
    classes: list[StrictStr | StrictInt] | None
    dim: int | None
    metadata: Metadata
    config: HeadConfigOut | None = Field(
        description="Resolved hyper-parameters, method used, best epoch, device, versions, "
        "deviations from the paper, auto candidates."
    )
    metrics: dict[str, SplitMetrics | OodAverage] | None = Field(
        description="Per split (train, validation, test, ood:<name>): accuracy, macro_f1, mcc, "
        "per-class scores, confusion matrix; plus ood_average."
    )
    spectra: dict[str, SplitSpectra] | None = Field(
        description="Per split: spectrum of raw backbone features and of adapted features."
    )
    job_id: str | None
    created_at: datetime
    trained_at: datetime | None


class HeadCreated(BaseModel):
    head: HeadOut
    job: JobOut


class ClassMetricsRow(BaseModel):
    label: Label
    precision: float
    recall: float
    f1: float
    support: int
    confusion: list[int] = Field(
        description="This label's row of the confusion matrix: how many of its examples were "
        "predicted as each label, in `labels` order of the split."
    )


class ClassMetricsPage(BaseModel):
    """One split's per-class metrics and confusion-matrix rows, a page of labels at a time
    (what GET /v1/heads/{head_id} leaves out for splits with many labels)."""

    head_id: str
    split: str
    labels: list[Label] = Field(description="Every label of the split, in matrix order.")
    items: list[ClassMetricsRow]
    total: int
    limit: int
    offset: int
    has_more: bool


class HeadPage(BaseModel):
    items: list[HeadOut] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
    has_more: bool = Field(description="More heads follow: pass `next_after` as `after`.")
    next_after: str | None = Field(description="Cursor of the next page, null at the end.")
