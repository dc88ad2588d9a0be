"""The `audit` job kind: embed the audited splits (through the SQL cache; only misses reach
the backbone) -> ``tuner.audit.audit_labels`` (one progress step per solve, cancellable)
-> store the summary and one item per example through ``audits.service.mark_ready``.

Registered for ``JobKind.AUDIT`` by the composition root, with
``audits.service.on_audit_job_ended`` as the terminal hook.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from nmtune.adapters import BackendRegistry
from nmtune.service.audits import service as audits_service
from nmtune.service.audits.models import AuditStatus
from nmtune.service.backbones.service import backend_for_job
from nmtune.service.datasets.service import load_vectors
from nmtune.service.db.session import Database
from nmtune.service.embeddings.service import EmbeddingCache
from nmtune.service.jobs.handlers import JobContext, JobFailed
from nmtune.service.ops.threads import compute_threads, with_threads
from nmtune.service.settings import Settings
from nmtune.tuner.audit import LabelAudit, audit_labels


class AuditJob:
    """The handler of `audit` jobs (collaborators given by the composition root)."""

    def __init__(
        self, db: Database, registry: BackendRegistry, cache: EmbeddingCache, settings: Settings
    ) -> None:
        self.db = db
        self.registry = registry
        self.cache = cache
        self.settings = settings

    async def __call__(self, jc: JobContext) -> dict[str, Any]:
        audit_id = str(jc.params["audit_id"])
        audit, ds = await asyncio.to_thread(audits_service.load_for_job, self.db, audit_id)
        if audit.status == AuditStatus.READY:  # a second run of a finished job
            return {"audit_id": audit.id, "reused": True}
        rows = await asyncio.to_thread(
            audits_service.audited_rows, self.db, ds.id, list(audit.splits)
        )
        if ds.backbone_identity is not None:  # a vector dataset: its own vectors, no backbone
            if audit.backbone_identity != ds.backbone_identity:
                raise JobFailed(
                    "BackboneChanged", "the audit's backbone identity is not the dataset's"
                )
            stored = await asyncio.to_thread(load_vectors, self.db, ds)  # (N, D)
            x = stored[np.asarray([r[0] for r in rows], dtype=np.int64)]  # (n, D)
            await jc.embed_progress(len(rows), len(rows))
        else:
            backend = await backend_for_job(
                self.registry, audit.backbone, audit.backbone_identity, "audit"
            )
            inputs: list[str | bytes] = [r[3] if r[3] is not None else (r[4] or b"") for r in rows]
            x = await self.cache.embed_dataset(  # (n, D)
                jc.job.tenant_id,
                (ds.id, ds.n_examples),
                backend,
                inputs,
                keys=[r[5] for r in rows],
                positions=None if len(rows) == ds.n_examples else [r[0] for r in rows],
                on_progress=jc.embed_progress,
                should_cancel=jc.cancel_requested,
            )
        labels: list[Any] = [int(r[2]) if ds.label_kind == "int" else r[2] for r in rows]
        opts = dict(audit.options)

        def on_step(phase: str, done: int, total: int) -> bool:
            return not jc.report_progress("audit", done, total)

        await jc.progress("audit", 0, 0)
        threads = compute_threads(self.settings.compute_torch_threads)
        result: LabelAudit = await asyncio.get_running_loop().run_in_executor(
            None,
            with_threads(
                threads,
                lambda: audit_labels(
                    x,
                    labels,
                    method=str(opts.get("method", "auto")),
                    folds=int(opts.get("folds", 5)),
                    random_state=int(opts.get("seed", 0)),
                    score=str(opts.get("score", "self_confidence")),
                    repeats=int(opts.get("repeats", 2)),
                    device=self.settings.worker_device or "cpu",
                    callback=on_step,
                ),
            ),
        )
        suggested = result.suggested_labels()
        items = [
            {
                "position": int(r[0]),
                "split": r[1],
                "given": r[2],
                "suggested": str(suggested[i].item()),
                "score": float(result.scores[i]),
                "flagged": bool(result.flagged[i]),
            }
            for i, r in enumerate(rows)
        ]
        summary = result.summary()
        await asyncio.to_thread(audits_service.mark_ready, self.db, audit_id, summary, items)
        return {
            "audit_id": audit_id,
            "reused": False,
            "n_examples": summary["n_examples"],
            "n_flagged": summary["n_flagged"],
            "estimated_noise_rate": summary["estimated_noise_rate"],
        }
