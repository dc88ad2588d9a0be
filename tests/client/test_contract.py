"""The client against the server's OpenAPI spec, without a server: every request the client
can build is an operation of the spec with the fields it sends, every result type reads
fields its schema has. (tests/service/test_client_e2e.py checks the same on real traffic.)"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from nmtune import Client
from nmtune.service.app import create_app
from tests.client.contract import check_request, check_types
from tests.client.test_retries import HEAD, JOB
from tests.service.conftest import make_settings

AUDIT = {
    "id": "au_1",
    "dataset_id": "ds_1",
    "backbone": "fake",
    "splits": ["train"],
    "options": {"folds": 3},
    "status": "ready",
    "summary": None,
    "job_id": "job_1",
    "created_at": "2026-12-01T00:00:00Z",
    "finished_at": None,
}
EXAMPLE = {
    "position": 3,
    "split": "train",
    "text": "a",
    "image_sha256": None,
    "given": "x",
    "suggested": "y",
    "score": 0.9,
    "flagged": True,
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    out: dict[str, Any] = create_app(make_settings("sqlite://", [])).openapi()
    return out


def test_result_types_match_the_schemas(spec: dict[str, Any]) -> None:
    assert check_types(spec) == []


def test_every_client_call_is_in_the_spec(spec: dict[str, Any], tmp_path: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/export"):
            return httpx.Response(200, content=b"zip")
        if path == "/v1/jobs":
            return httpx.Response(
                200, json={"items": [JOB], "has_more": False, "next_after": None, "limit": 1}
            )
        if path.startswith("/v1/jobs/"):
            return httpx.Response(200, json={**JOB, "status": "succeeded"})
        if path == "/v1/heads" and request.method == "POST":
            return httpx.Response(202, json={"head": HEAD, "job": JOB})
        if path.endswith("/predict"):
            pred = {
                "label": "x",
                "probability": 1.0,
                "scores": [{"label": "x", "probability": 1.0}],
            }
            return httpx.Response(200, json={"head_id": "hd_1", "predictions": [pred]})
        if path == "/v1/embeddings":
            return httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.5]}]})
        if path.endswith("/spectrum"):
            s = {
                "singular_values": [1.0],
                "sve": 0.0,
                "lsvr": 0.0,
                "effective_rank": 1.0,
                "n_samples": 2,
                "n_features": 1,
            }
            return httpx.Response(
                200, json={"head_id": "hd_1", "split": "test", "raw": s, "adapted": s}
            )
        if request.method == "DELETE":
            return httpx.Response(204)
        if path.endswith("/audit"):
            return httpx.Response(202, json={"audit": AUDIT, "job": JOB})
        if path.endswith("/audits"):
            return httpx.Response(200, json={"items": [AUDIT], "total": 1})
        if "/audits/" in path:
            page = {"items": [EXAMPLE], "total": 1, "limit": 1, "offset": 0}
            return httpx.Response(200, json={**AUDIT, "examples": page})
        if path.startswith("/v1/heads"):
            return httpx.Response(200, json={"items": [HEAD]} if path == "/v1/heads" else HEAD)
        ds = {
            "id": "ds_1",
            "name": "d",
            "modality": "text",
            "label_kind": "str",
            "n_examples": 1,
            "classes": ["x"],
            "splits": {},
            "metadata": {},
            "created_at": None,
        }
        return httpx.Response(
            201, json={"items": [ds]} if path == "/v1/datasets" and request.method == "GET" else ds
        )

    c = Client("http://t", "k", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    c.datasets.create(["a"], ["x"], "train", name="d", metadata={"a": 1})
    c.datasets.create(records=[{"text": "a", "label": "x"}])
    f = tmp_path / "d.csv"
    f.write_text("text,label\na,x\n")
    c.datasets.upload(f, metadata={"a": 1})
    c.datasets.from_vectors(
        np.zeros((2, 3)),
        ["x", "y"],
        "train",
        backbone="b",
        backbone_identity="b:1",
        texts=["a", "b"],
    )
    np.save(tmp_path / "v.npy", np.zeros((1, 3), dtype=np.float32))
    (tmp_path / "r.jsonl").write_text('{"label": "x"}\n')
    c.datasets.upload_vectors(
        tmp_path / "v.npy", tmp_path / "r.jsonl", backbone="b", backbone_identity="b:1"
    )
    c.datasets.get("ds_1")
    c.datasets.list(limit=5, offset=1)
    assert [d.id for d in c.datasets.iter(page_size=1)] == ["ds_1"]
    assert [h.id for h in c.heads.iter(dataset="ds_1", page_size=1)] == ["hd_1"]
    c.datasets.delete("ds_1")
    head = c.heads.create(
        "ds_1", "fake", "lr", preset="robust", overrides={"lr_cs": 3}, metadata={"a": 1}
    )
    head.wait(progress=False, poll_interval=0)
    c.heads.get("hd_1")
    c.heads.list(dataset="ds_1")
    head.predict(["a"], top_k=1)
    head.predict(embeddings=np.zeros((1, 4)))
    head.embed(["a"])
    head.spectrum("test")
    head.export()
    c.jobs.list(
        status=["failed", "succeeded"],
        kind="train",
        head="hd_1",
        dataset="ds_1",
        after="job_0",
        limit=5,
    )
    c.jobs.cancel("job_1")
    audit = c.audits.create("ds_1", "fake", splits=["train"], folds=3, repeats=1, seed=2)
    audit.wait(progress=False, poll_interval=0)
    assert audit.examples(flagged_only=False, sort="position", limit=5, offset=1)[0].flagged
    assert [e.position for e in audit.iter_examples(page_size=1)] == [3]
    audit.export(format="jsonl", flagged_only=False)
    c.audits.get("ds_1", "au_1")
    c.audits.list("ds_1", limit=2)
    c.heads.create("ds_1", "fake", "lr", audit=audit, audit_use="exclude_flagged")
    audit.delete()
    head.delete()
    assert len(seen) >= 21
    problems = [p for r in seen for p in check_request(spec, r)]
    assert problems == []
    # the checker itself catches what it should
    bad = httpx.Request("POST", "http://t/v1/heads", json={"dataset": "x"}, params={"q": 1})
    assert len(check_request(spec, bad)) == 2
    assert check_request(spec, httpx.Request("PUT", "http://t/v1/heads")) != []
