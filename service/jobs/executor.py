"""Runs one job end to end. Shared by the in-process runner and the Celery worker.

Stages of a train job: embed (through the SQL cache; only misses reach the backbone)
-> train (tuner, one report per epoch) -> evaluate (metrics per split, spectra raw vs
adapted) -> save the head (safetensors + JSON config). The job row is the source of truth;
a job that runs twice produces one head and no duplicate cache rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from adapters import (
    AdapterError,
    AuthError,
    BackendRegistry,
    BadRequestError,
    InputPolicyError,
    RateLimitedError,
    UnavailableError,
)
from service.datasets import repository as datasets_repo
from service.datasets.models import Dataset
from service.db.base import utcnow
from service.db.session import Database
from service.embeddings.service import EmbeddingCache, EmbeddingCancelled
from service.heads.models import Head
from service.jobs import repository as jobs_repo
from service.jobs.models import Job
from service.ops import metrics
from service.ops.threads import compute_threads, with_threads
from service.settings import Settings
from tuner import (
    NMTuneClassifier,
    TrainingCancelled,
    TunerInputError,
    classification_metrics,
    spectrum,
)

log = logging.getLogger(__name__)

Outcome = Literal["succeeded", "failed", "cancelled", "requeued", "skipped"]
SPECTRUM_VALUES_KEPT = 256


class JobCancelled(Exception):
    pass


class JobFailed(Exception):
    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message


@dataclass
class LoadedExamples:
    splits: list[str]
    labels: list[str]
    inputs: list[str | bytes]
    keys: list[str]


def load_examples(db: Database, dataset_id: str, splits: list[str] | None = None) -> LoadedExamples:
    with db.session() as s:
        rows = datasets_repo.examples(s, dataset_id, splits)
    return LoadedExamples(
        splits=[r[0] for r in rows],
        labels=[r[1] for r in rows],
        inputs=[r[2] if r[2] is not None else (r[3] or b"") for r in rows],
        keys=[r[4] for r in rows],
    )


def summarize_spectrum(x: np.ndarray, max_samples: int, seed: int) -> dict[str, Any]:
    spec = spectrum(x, center=True, normalize=False, max_samples=max_samples, random_state=seed)
    d = spec.to_dict()
    sv = d.get("singular_values", [])
    d["singular_values"] = [float(v) for v in list(sv)[:SPECTRUM_VALUES_KEPT]]
    d["n_singular_values_total"] = len(sv)
    return d


class JobExecutor:
    def __init__(
        self,
        db: Database,
        registry: BackendRegistry,
        cache: EmbeddingCache,
        settings: Settings,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.cache = cache
        self.settings = settings
        self.worker_id = worker_id or jobs_repo.worker_identity()

    async def run(self, job_id: str) -> Outcome:
        job = await asyncio.to_thread(
            jobs_repo.claim, self.db, job_id, self.worker_id, self.settings.job_max_attempts
        )
        if job is None:
            return "skipped"
        log.info("job started", extra={"job_id": job_id, "kind": job.kind, "attempt": job.attempts})
        beat = asyncio.create_task(self._heartbeat(job_id))
        try:
            if job.kind == "train":
                result = await self._train(job)
            else:
                result = await self._embed(job)
        except (JobCancelled, TrainingCancelled, EmbeddingCancelled):
            await asyncio.to_thread(self._finish, job, "cancelled", None, None)
            return "cancelled"
        except (RateLimitedError, UnavailableError) as exc:
            err = {"type": type(exc).__name__, "message": str(exc)}
            if job.attempts < self.settings.job_max_attempts:
                log.warning("job %s: transient backend error, re-queued: %s", job_id, exc)
                await asyncio.to_thread(jobs_repo.requeue, self.db, job_id, err)
                return "requeued"
            await asyncio.to_thread(self._finish, job, "failed", err, None)
            return "failed"
        except JobFailed as exc:
            await asyncio.to_thread(
                self._finish, job, "failed", {"type": exc.type, "message": exc.message}, None
            )
            return "failed"
        except (AuthError, BadRequestError, InputPolicyError, AdapterError, TunerInputError) as exc:
            await asyncio.to_thread(
                self._finish, job, "failed", {"type": type(exc).__name__, "message": str(exc)}, None
            )
            return "failed"
        except Exception as exc:
            log.exception("job %s crashed", job_id)
            await asyncio.to_thread(
                self._finish,
                job,
                "failed",
                {"type": "InternalError", "message": str(exc)[:500]},
                None,
            )
            return "failed"
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await asyncio.to_thread(self._finish, job, "succeeded", None, result)
        return "succeeded"

    # ------------------------------------------------------------------ helpers
    async def _heartbeat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await asyncio.to_thread(jobs_repo.heartbeat, self.db, job_id)
            except Exception:  # a missed beat is not fatal
                log.warning("heartbeat failed for job %s", job_id, exc_info=True)

    def _finish(
        self, job: Job, status: str, error: dict[str, str] | None, result: dict[str, Any] | None
    ) -> None:
        jobs_repo.finish(self.db, job.id, status, error=error, result=result)
        metrics.JOBS.labels(kind=job.kind, status=status).inc()
        if job.head_id and status in ("failed", "cancelled"):
            with self.db.session() as s:
                head = s.get(Head, job.head_id)
                if head is not None and head.status == "pending":
                    head.status = status
        log.info("job finished", extra={"job_id": job.id, "status": status})

    async def _cancelled(self, job_id: str) -> bool:
        return await asyncio.to_thread(jobs_repo.cancel_requested, self.db, job_id)

    async def _embed_examples(self, job: Job, ex: LoadedExamples, backbone: str) -> np.ndarray:
        backend = self.registry.get(backbone)

        async def progress(done: int, total: int) -> None:
            await asyncio.to_thread(jobs_repo.set_progress, self.db, job.id, "embed", done, total)

        return await self.cache.embed(
            job.tenant_id,
            backend,
            ex.inputs,
            keys=ex.keys,
            on_progress=progress,
            should_cancel=lambda: self._cancelled(job.id),
        )

    # ------------------------------------------------------------------ embed job
    async def _embed(self, job: Job) -> dict[str, Any]:
        assert job.dataset_id is not None
        split = job.params.get("split")
        ex = await asyncio.to_thread(
            load_examples, self.db, job.dataset_id, [split] if split else None
        )
        x = await self._embed_examples(job, ex, job.params["backbone"])
        return {"n_embedded": int(x.shape[0]), "dim": int(x.shape[1]) if x.ndim == 2 else 0}

    # ------------------------------------------------------------------ train job
    async def _train(self, job: Job) -> dict[str, Any]:
        assert job.head_id is not None
        head, ds = await asyncio.to_thread(self._load_head, job.head_id)
        if head.status == "ready":  # a second run of a finished job: nothing to redo
            return {"head_id": head.id, "reused": True}
        if ds is None:
            raise JobFailed("DatasetDeleted", "the dataset was deleted before training")
        backend = self.registry.get(head.backbone)
        await backend.ensure_ready()
        if backend.identity != head.backbone_identity:
            raise JobFailed(
                "BackboneChanged",
                f"backbone {head.backbone!r} changed configuration since the head was "
                "created; create a new head",
            )

        # 1. embed -----------------------------------------------------------------
        t0 = time.perf_counter()
        ex = await asyncio.to_thread(load_examples, self.db, ds.id)
        x = await self._embed_examples(job, ex, head.backbone)  # (N, D)
        embed_s = time.perf_counter() - t0

        labels: list[Any] = [int(v) for v in ex.labels] if ds.label_kind == "int" else ex.labels
        y = np.asarray(labels, dtype=object)
        split_arr = np.asarray(ex.splits)
        train_idx = np.flatnonzero(split_arr == "train")
        val_idx = np.flatnonzero(split_arr == "validation")

        # 2. train -----------------------------------------------------------------
        overrides = dict(head.overrides)
        if self.settings.worker_device and "device" not in overrides:
            overrides["device"] = self.settings.worker_device
        clf = NMTuneClassifier(
            method=head.method, preset=head.preset, random_state=head.seed, **overrides
        )
        loop = asyncio.get_running_loop()
        t1 = time.perf_counter()

        def on_epoch(report: Any) -> bool:
            rep = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
            done = int(rep.get("epoch", 0))
            total = int(rep.get("epochs", 0))
            cancel = jobs_repo.add_epoch(self.db, job.id, _jsonable(rep), done, total)
            if cancel:
                raise TrainingCancelled("cancelled by the user")
            return True

        await asyncio.to_thread(jobs_repo.set_progress, self.db, job.id, "train", 0, 0)
        fit_kwargs: dict[str, Any] = {"callback": on_epoch}
        if val_idx.size:
            fit_kwargs.update(X_val=x[val_idx], y_val=list(y[val_idx]))
        threads = compute_threads(self.settings.compute_torch_threads)
        await loop.run_in_executor(
            None,
            with_threads(threads, lambda: clf.fit(x[train_idx], list(y[train_idx]), **fit_kwargs)),
        )
        train_s = time.perf_counter() - t1

        # 3. evaluate --------------------------------------------------------------
        await asyncio.to_thread(jobs_repo.set_progress, self.db, job.id, "evaluate", 0, 1)
        metrics_out, spectra = await asyncio.to_thread(
            with_threads(threads, lambda: self._evaluate(clf, x, y, split_arr, head.seed))
        )

        # 4. save ------------------------------------------------------------------
        blob = clf.to_bytes(backbone_identity=head.backbone_identity)
        config = dict(clf.config_dict_)
        config.update(
            {
                "method_used": getattr(clf, "method_", head.method),
                "best_epoch": getattr(clf, "best_epoch_", None),
                "best_score": getattr(clf, "best_score_", None),
                "device": str(getattr(clf, "device_", "cpu")),
                "torch_version": str(torch.__version__),
                "cuda_version": torch.version.cuda,  # None on a CPU build
                "candidates": _jsonable(getattr(clf, "candidates_", None)),
                "timings_s": {"embed": round(embed_s, 3), "train": round(train_s, 3)},
                "n_train": int(train_idx.size),
                "n_validation": int(val_idx.size),
                "validation": "given" if val_idx.size else "carved from train",
            }
        )
        classes = [c.item() if hasattr(c, "item") else c for c in clf.classes_]
        await asyncio.to_thread(
            self._save_head,
            head.id,
            blob,
            _jsonable(config),
            metrics_out,
            spectra,
            int(x.shape[1]),
            classes,
        )
        await asyncio.to_thread(jobs_repo.set_progress, self.db, job.id, "evaluate", 1, 1)
        return {"head_id": head.id, "reused": False}

    def _load_head(self, head_id: str) -> tuple[Head, Dataset | None]:
        with self.db.session() as s:
            head = s.get(Head, head_id)
            if head is None:
                raise JobFailed("HeadDeleted", "the head was deleted")
            ds = s.get(Dataset, head.dataset_id) if head.dataset_id else None
            s.expunge_all()
            return head, ds

    def _evaluate(
        self, clf: NMTuneClassifier, x: np.ndarray, y: np.ndarray, split_arr: np.ndarray, seed: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        metrics_out: dict[str, Any] = {}
        spectra: dict[str, Any] = {}
        max_n = self.settings.max_spectrum_samples
        for split in sorted(set(split_arr.tolist()), key=_split_order):
            idx = np.flatnonzero(split_arr == split)
            xs = x[idx]
            pred = clf.predict(xs)
            m = classification_metrics(list(y[idx]), list(pred), labels=list(clf.classes_))
            metrics_out[split] = _jsonable(m)
            if idx.size >= 2:
                spectra[split] = {
                    "raw": summarize_spectrum(xs, max_n, seed),
                    "adapted": summarize_spectrum(np.asarray(clf.transform(xs)), max_n, seed),
                }
        ood = [k for k in metrics_out if k.startswith("ood:")]
        if ood:
            metrics_out["ood_average"] = {
                "accuracy": float(np.mean([metrics_out[k]["accuracy"] for k in ood])),
                "macro_f1": float(np.mean([metrics_out[k]["macro_f1"] for k in ood])),
                "splits": ood,
            }
        return metrics_out, spectra

    def _save_head(
        self,
        head_id: str,
        blob: bytes,
        config: dict[str, Any],
        metrics_out: dict[str, Any],
        spectra: dict[str, Any],
        dim: int,
        classes: list[Any],
    ) -> None:
        with self.db.session() as s:
            head = s.get(Head, head_id)
            if head is None:
                raise JobFailed("HeadDeleted", "the head was deleted during training")
            if head.status == "ready":
                return
            head.weights, head.config, head.metrics, head.spectra = (
                blob,
                config,
                metrics_out,
                spectra,
            )
            head.dim, head.classes, head.status, head.trained_at = dim, classes, "ready", utcnow()


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "validation": 1, "test": 2}
    return (order.get(split, 3), split)


def _jsonable(obj: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain JSON types; non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    return str(obj)
