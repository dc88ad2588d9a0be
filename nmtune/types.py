"""Typed results of the client, one dataclass per OpenAPI schema it reads (the names of the
schemas are in each docstring; tests/client/test_contract.py checks every field against the
server's spec). Unknown fields of newer servers are ignored; ``raw`` keeps the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AuditExample",
    "AuditInfo",
    "ClassScore",
    "Dataset",
    "Epoch",
    "HeadInfo",
    "HeadSpectrum",
    "Job",
    "JobError",
    "JobPage",
    "OodAverage",
    "Prediction",
    "Progress",
    "Spectrum",
    "SplitMetrics",
    "SplitSummary",
]

Label = str | int


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class SplitSummary:
    """OpenAPI ``SplitSummary``."""

    count: int
    labels: dict[str, int]


@dataclass(frozen=True)
class Dataset:
    """OpenAPI ``DatasetOut``."""

    id: str
    name: str
    modality: str
    label_kind: str
    n_examples: int
    classes: list[Label]
    splits: dict[str, SplitSummary]
    metadata: dict[str, Any]
    created_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # vector datasets (precomputed embeddings): the declared backbone, identity, dimension
    backbone: str | None = None
    backbone_identity: str | None = None
    dim: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Dataset:
        return cls(
            id=d["id"],
            name=d["name"],
            modality=d["modality"],
            label_kind=d["label_kind"],
            n_examples=int(d["n_examples"]),
            classes=list(d["classes"]),
            splits={
                k: SplitSummary(count=int(v["count"]), labels=dict(v["labels"]))
                for k, v in d["splits"].items()
            },
            metadata=dict(d.get("metadata") or {}),
            created_at=_dt(d.get("created_at")),
            raw=d,
            backbone=d.get("backbone"),
            backbone_identity=d.get("backbone_identity"),
            dim=None if d.get("dim") is None else int(d["dim"]),
        )


@dataclass(frozen=True)
class Progress:
    """OpenAPI ``Progress``."""

    done: int
    total: int


@dataclass(frozen=True)
class JobError:
    """OpenAPI ``JobError``."""

    type: str
    message: str


@dataclass(frozen=True)
class Epoch:
    """OpenAPI ``EpochOut``: one training epoch (phase ``cv``: a selection fold's)."""

    method: str
    candidate: int
    epoch: int
    epochs: int
    losses: dict[str, float | None]
    val_accuracy: float | None
    val_macro_f1: float | None
    elapsed_s: float
    phase: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Epoch:
        return cls(
            method=d["method"],
            candidate=int(d.get("candidate", 0)),
            epoch=int(d["epoch"]),
            epochs=int(d["epochs"]),
            losses=dict(d.get("losses") or {}),
            val_accuracy=d.get("val_accuracy"),
            val_macro_f1=d.get("val_macro_f1"),
            elapsed_s=float(d.get("elapsed_s", 0.0)),
            phase=str(d.get("phase", "fit")),
        )


TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    """OpenAPI ``JobOut``."""

    id: str
    kind: str
    status: str
    stage: str | None
    progress: Progress
    epochs: list[Epoch]
    error: JobError | None
    attempts: int
    head_id: str | None
    dataset_id: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    cancel_requested: bool
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        err = d.get("error")
        return cls(
            id=d["id"],
            kind=d["kind"],
            status=d["status"],
            stage=d.get("stage"),
            progress=Progress(done=int(d["progress"]["done"]), total=int(d["progress"]["total"])),
            epochs=[Epoch.from_json(e) for e in d.get("epochs") or []],
            error=JobError(type=err["type"], message=err["message"]) if err else None,
            attempts=int(d.get("attempts", 0)),
            head_id=d.get("head_id"),
            dataset_id=d.get("dataset_id"),
            params=dict(d.get("params") or {}),
            result=d.get("result"),
            cancel_requested=bool(d.get("cancel_requested", False)),
            created_at=_dt(d.get("created_at")),
            started_at=_dt(d.get("started_at")),
            finished_at=_dt(d.get("finished_at")),
            raw=d,
        )


@dataclass(frozen=True)
class JobPage:
    """OpenAPI ``JobPage``."""

    items: list[Job]
    has_more: bool
    next_after: str | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobPage:
        return cls(
            items=[Job.from_json(j) for j in d["items"]],
            has_more=bool(d["has_more"]),
            next_after=d.get("next_after"),
        )


@dataclass(frozen=True)
class SplitMetrics:
    """OpenAPI ``SplitMetrics``: scores on one split."""

    accuracy: float
    macro_f1: float
    mcc: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    labels: list[Label]
    n_samples: int


@dataclass(frozen=True)
class OodAverage:
    """OpenAPI ``OodAverage``: the mean over the ``ood:<name>`` splits."""

    accuracy: float
    macro_f1: float
    splits: list[str]


def metrics_from_json(d: dict[str, Any] | None) -> dict[str, SplitMetrics | OodAverage] | None:
    if d is None:
        return None
    out: dict[str, SplitMetrics | OodAverage] = {}
    for split, m in d.items():
        if "per_class" in m:
            out[split] = SplitMetrics(
                accuracy=float(m["accuracy"]),
                macro_f1=float(m["macro_f1"]),
                mcc=float(m["mcc"]),
                per_class={k: dict(v) for k, v in m["per_class"].items()},
                confusion_matrix=[list(r) for r in m["confusion_matrix"]],
                labels=list(m["labels"]),
                n_samples=int(m["n_samples"]),
            )
        else:
            out[split] = OodAverage(
                accuracy=float(m["accuracy"]),
                macro_f1=float(m["macro_f1"]),
                splits=list(m["splits"]),
            )
    return out


@dataclass(frozen=True)
class HeadInfo:
    """OpenAPI ``HeadOut``. ``config`` is the JSON of ``HeadConfigOut`` (resolved
    hyper-parameters, ``selection``, auto's ``candidates``)."""

    id: str
    name: str
    dataset_id: str | None
    backbone: str
    backbone_identity: str
    method: str
    preset: str
    overrides: dict[str, Any]
    seed: int
    status: str
    classes: list[Label] | None
    dim: int | None
    metadata: dict[str, Any]
    config: dict[str, Any] | None
    metrics: dict[str, SplitMetrics | OodAverage] | None
    job_id: str | None
    created_at: datetime | None
    trained_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HeadInfo:
        return cls(
            id=d["id"],
            name=d.get("name", ""),
            dataset_id=d.get("dataset_id"),
            backbone=d["backbone"],
            backbone_identity=d["backbone_identity"],
            method=d["method"],
            preset=d["preset"],
            overrides=dict(d.get("overrides") or {}),
            seed=int(d.get("seed", 0)),
            status=d["status"],
            classes=d.get("classes"),
            dim=d.get("dim"),
            metadata=dict(d.get("metadata") or {}),
            config=d.get("config"),
            metrics=metrics_from_json(d.get("metrics")),
            job_id=d.get("job_id"),
            created_at=_dt(d.get("created_at")),
            trained_at=_dt(d.get("trained_at")),
            raw=d,
        )


@dataclass(frozen=True)
class ClassScore:
    """OpenAPI ``ClassScore``."""

    label: Label
    probability: float


@dataclass(frozen=True)
class Prediction:
    """OpenAPI ``Prediction``: the label, its probability, classes by probability."""

    label: Label
    probability: float
    scores: list[ClassScore]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Prediction:
        return cls(
            label=d["label"],
            probability=float(d["probability"]),
            scores=[ClassScore(s["label"], float(s["probability"])) for s in d["scores"]],
        )


@dataclass(frozen=True)
class Spectrum:
    """OpenAPI ``SpectrumOut``."""

    singular_values: list[float]
    sve: float
    lsvr: float
    effective_rank: float
    n_samples: int
    n_features: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Spectrum:
        return cls(
            singular_values=[float(v) for v in d["singular_values"]],
            sve=float(d["sve"]),
            lsvr=float(d["lsvr"]),
            effective_rank=float(d["effective_rank"]),
            n_samples=int(d["n_samples"]),
            n_features=int(d["n_features"]),
        )


@dataclass(frozen=True)
class HeadSpectrum:
    """OpenAPI ``HeadSpectrum``: raw backbone vs adapted features on one split."""

    head_id: str
    split: str
    raw: Spectrum
    adapted: Spectrum

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HeadSpectrum:
        return cls(
            head_id=d["head_id"],
            split=d["split"],
            raw=Spectrum.from_json(d["raw"]),
            adapted=Spectrum.from_json(d["adapted"]),
        )

    def plot(self, ax: Any = None) -> Any:
        """Singular values, raw vs adapted, on a log scale (needs matplotlib)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        for name, spec in (("raw", self.raw), ("adapted", self.adapted)):
            ax.plot(
                range(1, len(spec.singular_values) + 1),
                spec.singular_values,
                label=f"{name} (SVE {spec.sve:.2f}, LSVR {spec.lsvr:.2f})",
            )
        ax.set_yscale("log")
        ax.set_xlabel("index")
        ax.set_ylabel("singular value")
        ax.set_title(f"{self.head_id} · {self.split}")
        ax.legend()
        return ax


@dataclass(frozen=True)
class AuditInfo:
    """OpenAPI ``AuditOut``. ``summary`` (once ready) is the JSON of ``AuditSummary``:
    ``estimated_noise_rate``, ``n_flagged``, ``per_class``, ``joint`` (given x true),
    ``transition`` (true x given), ``noise_estimate``, ``agreement``, ``c``."""

    id: str
    dataset_id: str
    backbone: str
    splits: list[str]
    options: dict[str, Any]
    status: str
    summary: dict[str, Any] | None
    job_id: str | None
    created_at: datetime | None
    finished_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AuditInfo:
        return cls(
            id=d["id"],
            dataset_id=d["dataset_id"],
            backbone=d["backbone"],
            splits=list(d.get("splits") or []),
            options=dict(d.get("options") or {}),
            status=d["status"],
            summary=d.get("summary"),
            job_id=d.get("job_id"),
            created_at=_dt(d.get("created_at")),
            finished_at=_dt(d.get("finished_at")),
            raw=d,
        )


@dataclass(frozen=True)
class AuditExample:
    """OpenAPI ``AuditExample``: one audited example (``score``: higher = more likely
    mislabelled, a ranking; ``suggested``: the most probable class out of fold)."""

    position: int
    split: str
    text: str | None
    image_sha256: str | None
    given: Label
    suggested: Label
    score: float
    flagged: bool

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AuditExample:
        return cls(
            position=int(d["position"]),
            split=d["split"],
            text=d.get("text"),
            image_sha256=d.get("image_sha256"),
            given=d["given"],
            suggested=d["suggested"],
            score=float(d["score"]),
            flagged=bool(d["flagged"]),
        )
