"""GET /v1/heads/{id}/export: the zip runs offline (numpy + safetensors: nmtune.load_head;
ONNX through onnxruntime) with the server's predictions to 1e-5, for linear and NMTune
heads (batchnorm and layernorm adapters)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest

from nmtune import load_head
from nmtune.offline import ExportFormatError
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job

FAST = {"epochs": 2, "lp_epochs": 2, "min_steps": 4}


@pytest.mark.slow
def test_export_predicts_like_the_server(serve: Any, fake_upstream: Any, tmp_path: Any) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "ex", "records": sentiment_records(12)}).json()
    created = [
        post_head(c, ds["id"], "lr"),
        post_head(c, ds["id"], "nmtune", **FAST, residual_init=0.5),
        post_head(c, ds["id"], "mlp", **FAST, norm="layernorm", residual=False),
    ]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, fake_upstream.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for made in created:
        head_id = made["head"]["id"]
        job = wait_job(c, made["job"]["id"])
        assert job["status"] == "succeeded", job
        r = c.get(f"/v1/heads/{head_id}/export")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        names = set(zf.namelist())
        assert {"head.json", "weights.safetensors", "labels.json", "tuner.safetensors"} <= names
        info = json.loads(zf.read("head.json"))
        assert info["id"] == head_id and info["classes"] == ["neg", "pos"]

        served = c.post(f"/v1/heads/{head_id}/predict", json={"embeddings": x.tolist()}).json()[
            "predictions"
        ]
        server_p = np.array(
            [
                [
                    next(s["probability"] for s in p["scores"] if s["label"] == lab)
                    for lab in info["classes"]
                ]
                for p in served
            ]
        )
        # from the bytes, from the file, from an extracted folder
        path = tmp_path / f"{head_id}.zip"
        path.write_bytes(r.content)
        folder = tmp_path / head_id
        zf.extractall(folder)
        for source in (r.content, path, folder):
            head = load_head(source)
            assert head.head_id == head_id and head.dim == fake_upstream.dim
            np.testing.assert_allclose(head.predict_proba(x), server_p, atol=1e-5)
            assert head.predict(x) == [p["label"] for p in served]

        onnxruntime = pytest.importorskip("onnxruntime")
        assert "head.onnx" in names, info["onnx"]
        sess = onnxruntime.InferenceSession(zf.read("head.onnx"))
        proba, _logits, adapted = sess.run(None, {"features": x})
        np.testing.assert_allclose(proba, server_p, atol=1e-5)
        np.testing.assert_allclose(adapted, load_head(r.content).transform(x), atol=1e-5)

    # another tenant's head
    other = run.client("b")
    assert other.get(f"/v1/heads/{created[0]['head']['id']}/export").status_code == 404


def test_load_head_rejects_what_it_cannot_read(tmp_path: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("labels.json", "[]")
    with pytest.raises(ExportFormatError, match=r"head\.json"):
        load_head(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("head.json", json.dumps({"format_version": 99}))
        zf.writestr("weights.safetensors", b"")
    with pytest.raises(ExportFormatError, match="format_version"):
        load_head(buf.getvalue())
