"""The predict hot path: its JSON decoding, the in-process rate-limit window (the 429 itself:
test_hardening), and predict with the production caches on (key lookups, head rows and
weights cached) against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from nmtune.service.heads.models import Head
from nmtune.service.ops.fast_json import decode_json
from nmtune.service.ops.quotas import MemoryMovingWindow
from nmtune.tuner import NMTuneClassifier
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job

ODD_JSON = [
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    b'{"a": 1e400, "b": -1e400, "c": 1e-400, "d": 1.5e-320}',
    b'{"a": 123456789012345678901234567890, "b": 9007199254740993, "c": -0.0}',
    b'{"a": 1, "a": 2}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\u0000\\n\\u00e9"}',
    b"\xef\xbb\xbf{}",
    '{"a": 1}'.encode("utf-16"),
    b'  [1.0, 2, "x", null, true]  ',
    b'{"a": 1} x',
    b'{"a": "\xff"}',
    b'{"a": 01}',
    b'{"a": [1,]}',
    b'{"a": "\t"}',
    b"[" * 5000 + b"]" * 5000,
    b"",
]


def _decode(f: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", repr(f(raw))
    except Exception as exc:  # RecursionError included
        return "error", type(exc)


@pytest.mark.parametrize("raw", ODD_JSON, ids=range(len(ODD_JSON)))
def test_decode_json_gives_json_loads_result_or_error(raw: bytes) -> None:
    assert _decode(decode_json, raw) == _decode(json.loads, raw)


def test_decode_json_same_floats() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=2000), rng.normal(size=2000) * 1e300])
    for text in (json.dumps(values.tolist()), json.dumps(values.round(6).tolist())):
        assert decode_json(text.encode()) == json.loads(text)


def test_memory_moving_window() -> None:
    w = MemoryMovingWindow(3, 10.0)
    assert [w.hit("a", t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert w.hit("a", 3.0) == pytest.approx(7.0)  # the hit at 0 leaves the window at 10
    assert w.hit("b", 3.0) is None  # per key
    assert w.hit("a", 10.0) == pytest.approx(0.0)  # [0, 10] still holds the hit at 0
    assert w.hit("a", 10.5) is None  # refused hits were not counted
    assert w.hit("a", 11.5) is None
    assert w.hit("a", 11.6) == pytest.approx(0.4)  # 2, 10.5, 11.5 in the window
    w.SWEEP_KEYS = 2
    assert w.hit("c", 100.0) is None  # a third key sweeps those wholly outside the window
    assert set(w._hits) == {"c"}


def _ready_head(run: Any) -> str:
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "d", "records": sentiment_records(6)}).json()
    created = post_head(c, ds["id"], "lp", lp_epochs=2)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    return str(created["head"]["id"])


def test_predict_with_warm_caches(serve: Any, any_db_url: str, fake_upstream: Any) -> None:
    """With the caches of a production server (key lookups, head rows and weights), predict
    answers what the stored head computes, keeps tenants apart, refuses bad matrices naming
    the cell, and a deleted head is gone at once."""
    run = serve(any_db_url, [fake_spec(fake_upstream)], auth_cache_ttl_s=60)
    hid = _ready_head(run)
    a, b = run.client("a"), run.client("b")
    url = f"/v1/heads/{hid}/predict"
    with run.db.session() as s:
        blob = s.get(Head, hid).weights
    assert blob is not None
    clf = NMTuneClassifier.from_bytes(blob)
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    want = clf.predict_proba(x)
    classes = [str(v) for v in clf.classes_]
    for _ in range(3):  # the first call loads the head; the others read the caches
        r = a.post(url, json={"embeddings": x.tolist()})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert len(preds) == 5
        for row, p in zip(want, preds, strict=True):
            got = {s["label"]: s["probability"] for s in p["scores"]}
            assert got == pytest.approx(dict(zip(classes, row.tolist(), strict=True)), rel=1e-6)
            assert p["label"] == classes[int(np.argmax(row))]
            assert p["probability"] == pytest.approx(float(row.max()), rel=1e-6)
            assert [s["probability"] for s in p["scores"]] == sorted(got.values(), reverse=True)
    r = a.post(url, json={"embeddings": x[:2].tolist(), "top_k": 1})
    assert r.status_code == 200 and all(len(p["scores"]) == 1 for p in r.json()["predictions"])

    # the head's row is cached for tenant A: tenant B still gets a 404
    r = b.post(url, json={"embeddings": x.tolist()})
    assert r.status_code == 404 and r.json()["error"] == "NotFound"

    def bad(content: bytes, field: str | None) -> None:
        r = a.post(url, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        body = r.json()
        assert set(body) == {"error", "detail", "field"} and body["error"] == "ValidationError"
        if field is not None:
            assert body["field"] == field, body

    row = ", ".join(["0.5"] * 16)
    bad(json.dumps({"embeddings": [[0.5] * 16, [0.5] * 15]}).encode(), "embeddings[1]")
    bad(f'{{"embeddings": [[{row}], [0.1, NaN{", 0.5" * 14}]]}}'.encode(), "embeddings[1][1]")
    bad(f'{{"embeddings": [[1e39{", 0.5" * 15}]]}}'.encode(), "embeddings[0][0]")  # > float32
    bad(f'{{"embeddings": [[-Infinity{", 0.5" * 15}]]}}'.encode(), "embeddings[0][0]")
    bad(b'{"embeddings": []}', None)
    # invalid JSON: the same answer as on a route that decodes with json.loads
    broken = b'{"embeddings": [[0.5,]]}'
    r = a.post(url, content=broken, headers={"content-type": "application/json"})
    other = a.post("/v1/datasets", content=broken, headers={"content-type": "application/json"})
    assert r.status_code == other.status_code == 422
    assert r.json() == other.json()

    assert a.delete(f"/v1/heads/{hid}").status_code == 204
    r = a.post(url, json={"embeddings": x.tolist()})
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
