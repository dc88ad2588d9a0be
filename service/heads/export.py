"""GET /v1/heads/{id}/export: a trained head as a zip that runs without the server.

Members: ``head.json`` (the head's record, its resolved config, and the plan of operations
``tuner.export`` writes), ``weights.safetensors`` (float32 tensors named by the plan; what
``nmtune.load_head`` runs with numpy), ``labels.json``, ``head.onnx`` (when the ``onnx``
package is installed: inputs ``features`` (N, D) float32; outputs ``probabilities``,
``logits``, ``adapted``) and ``tuner.safetensors`` (the server's own blob, for
``tuner.NMTuneClassifier.from_bytes``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import zipfile
from typing import Any

from safetensors.numpy import save as st_save
from sqlalchemy.orm import Session

from nmtune.service.db.session import Database
from nmtune.service.errors import Conflict
from nmtune.service.heads import service
from nmtune.service.heads.models import HeadStatus
from nmtune.tuner import NMTuneClassifier
from nmtune.tuner.export import export_head, export_onnx

log = logging.getLogger(__name__)

EXPORT_FORMAT = "nmtune-head-export"
EXPORT_FORMAT_VERSION = 1


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def _read(session: Session, tenant_id: str, head_id: str) -> tuple[dict[str, Any], bytes]:
    head = service.get_head(session, tenant_id, head_id)
    if head.status != HeadStatus.READY or head.weights is None:
        raise Conflict(f"head {head_id!r} is {head.status}, not ready", field="head_id")
    out = service.head_out(session, head)
    return json.loads(out.model_dump_json()), bytes(head.weights)


def build_archive(record: dict[str, Any], blob: bytes, with_onnx: bool | None = None) -> bytes:
    """The zip of one head (``record``: its HeadOut as JSON; ``blob``: its stored weights)."""
    clf = NMTuneClassifier.from_bytes(blob)
    tensors, plan = export_head(clf.model_)
    classes = record["classes"]
    onnx_note: dict[str, Any]
    onnx_bytes = None
    if with_onnx is None:
        with_onnx = onnx_available()
    if with_onnx:
        onnx_bytes = export_onnx(clf.model_, int(plan["n_features"]))
        onnx_note = {
            "file": "head.onnx",
            "inputs": {"features": ["n", plan["n_features"]]},
            "outputs": {
                "probabilities": ["n", plan["n_classes"]],
                "logits": ["n", plan["n_classes"]],
                "adapted": ["n", plan["n_features"]],
            },
        }
    else:
        onnx_note = {"file": None, "reason": "the server has no `onnx` package installed"}
    info = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        **{k: record[k] for k in ("id", "name", "backbone", "backbone_identity", "method")},
        **{k: record[k] for k in ("preset", "dim", "classes", "metadata", "trained_at")},
        "class_type": "int" if all(isinstance(c, int) for c in classes) else "str",
        "config": record["config"],
        "metrics": record["metrics"],
        "plan": plan,
        "onnx": onnx_note,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("head.json", json.dumps(info, indent=1, sort_keys=True, allow_nan=False))
        zf.writestr("labels.json", json.dumps(classes))
        zf.writestr("weights.safetensors", st_save(tensors, metadata={"format": EXPORT_FORMAT}))
        zf.writestr("tuner.safetensors", blob)
        if onnx_bytes is not None:
            zf.writestr("head.onnx", onnx_bytes)
    return buf.getvalue()


def export_zip(db: Database, tenant_id: str, head_id: str) -> bytes:
    """Read the head in one short transaction, then build the zip outside it (sync: run it
    in a thread)."""
    with db.session() as s:
        record, blob = _read(s, tenant_id, head_id)
    return build_archive(record, blob)
