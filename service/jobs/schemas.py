from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.jobs.models import JobKind, JobStatus


class Progress(BaseModel):
    done: int
    total: int


class JobError(BaseModel):
    type: str
    message: str


class JobOut(BaseModel):
    id: str
    kind: str = Field(json_schema_extra={"enum": [k.value for k in JobKind]})
    status: JobStatus
    stage: Literal["embed", "train", "evaluate", "audit"] | None = Field(
        description="Current stage of a running job (also the last stage of a finished one)."
    )
    progress: Progress = Field(
        description="Items embedded (embed stage), epochs (train stage) or solves (audit stage)."
    )
    epochs: list[dict[str, Any]] = Field(
        description="Per-epoch report: losses (ce, mse, cov, svd, total) and validation scores."
    )
    error: JobError | None
    attempts: int
    head_id: str | None
    dataset_id: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
