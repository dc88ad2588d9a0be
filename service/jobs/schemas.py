from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from nmtune.service.jobs.models import JobKind, JobStatus
from nmtune.service.json_types import Scalar


class Progress(BaseModel):
    done: int
    total: int


class JobError(BaseModel):
    type: str
    message: str


class EpochOut(BaseModel):
    """One training epoch (or one cross-validation fold's epoch, phase `cv`)."""

    method: str = Field(description="Method being trained (auto: the candidate's).")
    candidate: int = Field(default=0, description="Index into auto's candidates (0 otherwise).")
    epoch: int = Field(description="1-based.")
    epochs: int
    losses: dict[str, float | None] = Field(
        default_factory=dict,
        description="Means over the epoch's batches: ce, mse, cov, svd, total (none for lr).",
    )
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    elapsed_s: float = Field(default=0.0, description="Since this candidate's training began.")
    phase: str = Field(default="fit", description="`cv`: a selection fold; `fit`: the head kept.")


class JobOut(BaseModel):
    id: str
    kind: str = Field(json_schema_extra={"enum": [k.value for k in JobKind]})
    status: JobStatus
    stage: Literal["embed", "train", "evaluate", "audit"] | None = Field(
        description="Current stage of a running job (also the last stage of a finished one)."
    )
    progress: Progress = Field(
        description="Items embedded (embed stage), epochs (train stage) or solves (audit stage: "
        "an audit's solves, or the folds of a head's audit_use auto check)."
    )
    epochs: list[EpochOut] = Field(
        description="Per-epoch report: losses (ce, mse, cov, svd, total) and validation scores."
    )
    error: JobError | None = Field(
        description="Why it failed; while it is queued or running again after a transient "
        "error (backbone unavailable or rate limited, a lost worker), that earlier attempt's "
        "error. Null once it succeeds."
    )
    attempts: int = Field(description="Attempts started so far (NMTUNE_JOB_MAX_ATTEMPTS).")
    head_id: str | None
    dataset_id: str | None
    params: dict[str, Scalar] = Field(description="What the job was asked to do.")
    result: dict[str, Scalar] | None = Field(description="What a finished job returned.")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(BaseModel):
    items: list[JobOut] = Field(description="Newest first.")
    has_more: bool = Field(description="More jobs follow: pass `next_after` as `after`.")
    next_after: str | None = Field(
        description="The cursor for the next page (the last item's id), or null at the end."
    )
    limit: int
