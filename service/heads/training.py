"""The `train` job kind: embed (through the SQL cache; only misses reach the backbone) ->
train (tuner, one report per epoch) -> evaluate (metrics per split, spectra raw vs adapted)
-> save the head (safetensors + JSON config) through ``heads.service.mark_ready``.

A job that runs twice produces one head and no duplicate cache rows. Registered for
``JobKind.TRAIN`` by the composition root, with ``heads.service.on_train_job_ended`` as the
terminal hook.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import torch

from nmtune.adapters import BackendRegistry
from nmtune.service.audits import service as audits_service
from nmtune.service.backbones.service import backend_for_job
from nmtune.service.datasets.service import load_examples, load_vectors
from nmtune.service.db.session import Database
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.heads import service as heads_service
from nmtune.service.heads.models import HeadStatus
from nmtune.service.jobs.handlers import JobContext, JobFailed
from nmtune.service.ops.threads import compute_threads, with_threads
from nmtune.service.settings import Settings
from nmtune.service.spectra import summarize_spectrum
from nmtune.tuner import (
    EpochReport,
    NMTuneClassifier,
    TrainingCancelled,
    TunerInputError,
    classification_metrics,
)
from nmtune.tuner.audit import choose_audit_use


class TrainJob:
    """The handler of `train` jobs (collaborators given by the composition root)."""

    def __init__(
        self, db: Database, registry: BackendRegistry, cache: EmbeddingCache, settings: Settings
    ) -> None:
        self.db = db
        self.registry = registry
        self.cache = cache
        self.settings = settings

    async def __call__(self, jc: JobContext) -> dict[str, Any]:
        job = jc.job
        assert job.head_id is not None
        head, ds = await asyncio.to_thread(heads_service.load_for_training, self.db, job.head_id)
        if head.status == HeadStatus.READY:  # a second run of a finished job: nothing to redo
            return {"head_id": head.id, "reused": True}
        if ds is None:
            raise JobFailed("DatasetDeleted", "the dataset was deleted before training")
        # 1. embed (or, for a vector dataset, read its vectors: no backbone call) -----
        t0 = time.perf_counter()
        ex = await asyncio.to_thread(load_examples, self.db, ds.id)
        if ds.backbone_identity is not None:
            if head.backbone_identity != ds.backbone_identity:
                raise JobFailed(
                    "BackboneChanged", "the head's backbone identity is not the dataset's"
                )
            x = await asyncio.to_thread(load_vectors, self.db, ds)
            await jc.embed_progress(len(ex.keys), len(ex.keys))
        else:
            backend = await backend_for_job(
                self.registry, head.backbone, head.backbone_identity, "head"
            )
            x = await self.cache.embed_dataset(  # (N, D)
                job.tenant_id,
                (ds.id, ds.n_examples),
                backend,
                ex.inputs,
                keys=ex.keys,
                on_progress=jc.embed_progress,
                should_cancel=jc.cancel_requested,
            )
        embed_s = time.perf_counter() - t0

        labels: list[Any] = [int(v) for v in ex.labels] if ds.label_kind == "int" else ex.labels
        y = np.asarray(labels, dtype=object)
        split_arr = np.asarray(ex.splits)
        train_idx = np.flatnonzero(split_arr == "train")
        val_idx = np.flatnonzero(split_arr == "validation")
        # labelled target-domain validation data (splits validation:ood:<name>): selection
        target_idx = np.flatnonzero(np.char.startswith(split_arr.astype(str), "validation:ood:"))
        audit_record: dict[str, Any] | None = None
        if jc.params.get("audit_id"):  # train through a label audit (its flagged rows)
            train_idx, val_idx, target_idx, audit_record = await self._through_audit(
                jc,
                str(jc.params["audit_id"]),
                str(jc.params.get("audit_use") or "exclude_flagged"),
                x,
                y,
                (train_idx, val_idx, target_idx),
            )

        # 2. train -----------------------------------------------------------------
        overrides = dict(head.overrides)
        if self.settings.worker_device and "device" not in overrides:
            overrides["device"] = self.settings.worker_device
        if head.method == "auto" and self.settings.auto_time_budget_s is not None:
            overrides.setdefault("auto_time_budget_s", self.settings.auto_time_budget_s)
        if audit_record is not None and head.method == "auto":
            # through an audit, auto also scores lp + generalized CE grown from lr (unless
            # the overrides say otherwise); config.auto_noise_robust records it
            overrides.setdefault("auto_noise_robust", True)
        clf = NMTuneClassifier(
            method=head.method, preset=head.preset, random_state=head.seed, **overrides
        )
        t1 = time.perf_counter()

        def on_epoch(report: EpochReport) -> bool:
            rep = report.to_dict()
            done = int(rep.get("epoch", 0))
            total = int(rep.get("epochs", 0))
            if jc.report_epoch(jsonable(rep), done, total):
                raise TrainingCancelled("cancelled by the user")
            return True

        await jc.progress("train", 0, 0)
        fit_kwargs: dict[str, Any] = {"callback": on_epoch}
        if val_idx.size:
            fit_kwargs.update(X_val=x[val_idx], y_val=list(y[val_idx]))
        if target_idx.size:
            fit_kwargs.update(X_target_val=x[target_idx], y_target_val=list(y[target_idx]))
        threads = compute_threads(self.settings.compute_torch_threads)
        await asyncio.get_running_loop().run_in_executor(
            None,
            with_threads(threads, lambda: clf.fit(x[train_idx], list(y[train_idx]), **fit_kwargs)),
        )
        train_s = time.perf_counter() - t1

        # 3. evaluate --------------------------------------------------------------
        await jc.progress("evaluate", 0, 1)
        max_n = self.settings.max_spectrum_samples
        metrics_out, spectra = await asyncio.to_thread(
            with_threads(threads, lambda: evaluate(clf, x, y, split_arr, head.seed, max_n))
        )

        # 4. save ------------------------------------------------------------------
        config = dict(clf.config_dict_)
        config.update(
            {
                "method_used": clf.method_,
                "best_epoch": clf.best_epoch_,
                "best_score": clf.best_score_,
                "device": str(clf.device_),
                "torch_version": str(torch.__version__),
                "cuda_version": torch.version.cuda,  # None on a CPU build
                "candidates": jsonable(clf.candidates_),
                "timings_s": {"embed": round(embed_s, 3), "train": round(train_s, 3)},
                "n_validation_given": int(val_idx.size),
                "n_target_validation": int(target_idx.size),
                "audit": audit_record,
            }
        )
        trained = {
            "weights": clf.to_bytes(backbone_identity=head.backbone_identity),
            "config": jsonable(config),
            "metrics": metrics_out,
            "spectra": spectra,
            "dim": int(x.shape[1]),
            "classes": [c.item() if hasattr(c, "item") else c for c in clf.classes_],
        }
        await asyncio.to_thread(heads_service.mark_ready, self.db, head.id, trained)
        await jc.progress("evaluate", 1, 1)
        return {"head_id": head.id, "reused": False}

    async def _through_audit(
        self,
        jc: JobContext,
        audit_id: str,
        requested: str,
        x: np.ndarray,
        y: np.ndarray,
        rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The (train, validation, target-validation) rows to train and select on, and the
        record of how the audit was used (row index == example position: every example is
        loaded in order). ``requested`` "auto" first checks by nested CV whether leaving the
        flagged rows out helps (tuner.audit.choose_audit_use)."""
        found = await asyncio.to_thread(audits_service.flagged_positions, self.db, audit_id)
        if found is None:
            raise JobFailed("AuditDeleted", f"audit {audit_id!r} was deleted or is not ready")
        flagged, record = found
        c = record.pop("c", None)  # the audit's C: the nested check's, not part of the record
        if not isinstance(c, int | float) or not c > 0:
            c = 1.0
        drop = np.fromiter(flagged, dtype=np.int64, count=len(flagged))
        use, choice = "exclude_flagged", None
        if requested == "auto" and not drop.size:
            use, choice = "all_rows", _no_check(c, "the audit flagged no example")
        elif requested == "auto":
            # the nested check runs on the rows the audit covered among those trained on
            audited = set(record.get("splits") or [])
            names = ("train", "validation")
            parts = [r for r, name in zip(rows[:2], names, strict=True) if name in audited]
            idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            use, choice = await self._choose_use(jc, record, c, x, y, idx)

        def keep(idx: np.ndarray) -> np.ndarray:
            return idx[~np.isin(idx, drop)] if use == "exclude_flagged" else idx

        kept = keep(rows[0]), keep(rows[1]), keep(rows[2])
        excluded = {
            name: int(before.size - after.size)
            for name, before, after in zip(
                ("train", "validation", "target_validation"), rows, kept, strict=True
            )
        }
        record = {
            **record,
            "requested": requested,
            "use": use,
            "choice": choice,
            "excluded": excluded,
        }
        return kept[0], kept[1], kept[2], record

    async def _choose_use(
        self,
        jc: JobContext,
        record: dict[str, Any],
        c: float,
        x: np.ndarray,
        y: np.ndarray,
        idx: np.ndarray,
    ) -> tuple[str, dict[str, Any]]:
        """audit_use auto: exclude_flagged or all_rows, by the nested CV of the train and
        validation rows with the audit's own options (and C, for the inner audits); each arm
        chooses its own C on its training rows, as the head will."""
        opts = record.get("options") or {}

        def on_fold(phase: str, done: int, total: int) -> bool:
            return not jc.report_progress("audit", done, total)

        await jc.progress("audit", 0, 0)
        threads = compute_threads(self.settings.compute_torch_threads)
        try:
            got = await asyncio.get_running_loop().run_in_executor(
                None,
                with_threads(
                    threads,
                    lambda: choose_audit_use(
                        x[idx],
                        list(y[idx]),
                        c=c,
                        folds=int(opts.get("folds", 5)),
                        random_state=int(opts.get("seed", 0)),
                        method=str(opts.get("method", "auto")),
                        score=str(opts.get("score", "self_confidence")),
                        repeats=int(opts.get("repeats", 2)),
                        device=self.settings.worker_device or "cpu",
                        callback=on_fold,
                        c_by_cv=True,
                    ),
                ),
            )
        except TunerInputError as exc:  # e.g. too few rows per class for an audit of every fold
            return "all_rows", _no_check(c, f"nested check not possible: {exc}; every row kept")
        return got.use, got.to_dict()


def _no_check(c: float, reason: str) -> dict[str, Any]:
    """audit_use auto's record when no nested check ran (every row is trained on)."""
    empty = dict.fromkeys(("accuracy_all_rows", "accuracy_exclude_flagged", "gain", "gain_se"))
    return {"use": "all_rows", **empty, "folds": None, "c": c, "reason": reason}


def evaluate(
    clf: NMTuneClassifier,
    x: np.ndarray,
    y: np.ndarray,
    split_arr: np.ndarray,
    seed: int,
    max_spectrum_samples: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics per split (+ ood_average) and spectra of raw vs adapted features."""
    metrics_out: dict[str, Any] = {}
    spectra: dict[str, Any] = {}
    for split in sorted(set(split_arr.tolist()), key=_split_order):
        idx = np.flatnonzero(split_arr == split)
        xs = x[idx]
        pred = clf.predict(xs)
        m = classification_metrics(list(y[idx]), list(pred), labels=list(clf.classes_))
        metrics_out[split] = jsonable(m)
        if idx.size >= 2:
            z = np.asarray(clf.transform(xs))
            spectra[split] = {
                "raw": summarize_spectrum(xs, max_spectrum_samples, seed),
                "adapted": summarize_spectrum(z, max_spectrum_samples, seed),
            }
    ood = [k for k in metrics_out if k.startswith("ood:")]
    if ood:
        metrics_out["ood_average"] = {
            "accuracy": float(np.mean([metrics_out[k]["accuracy"] for k in ood])),
            "macro_f1": float(np.mean([metrics_out[k]["macro_f1"] for k in ood])),
            "splits": ood,
        }
    return metrics_out, spectra


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "validation": 1, "test": 2}
    return (order.get(split, 3), split)


def jsonable(obj: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain JSON types; non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    return str(obj)
