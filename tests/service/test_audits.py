"""Label audits over real HTTP: job, summary, paging, sorting, export, tenant isolation,
bad inputs, the embedding cache, cancellation (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import numpy as np
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, minilm_spec, sentiment_records, wait_job
from tests.service.test_bad_input import assert_error


def _dataset(c: Any, records: list[dict[str, Any]] | None = None) -> str:
    r = c.post("/v1/datasets", json={"name": "a", "records": records or sentiment_records(12)})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


FAST = {"epochs": 2, "lp_epochs": 2, "min_steps": 20}


def _head(c: Any, ds: str, **body: Any) -> dict[str, Any]:
    r = c.post("/v1/heads", json={"dataset_id": ds, "backbone": "fake", **body})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    head: dict[str, Any] = c.get(f"/v1/heads/{r.json()['head']['id']}").json()
    return head


def _audit(c: Any, ds: str, **body: Any) -> dict[str, Any]:
    r = c.post(f"/v1/datasets/{ds}/audit", json={"backbone": "fake", **body})
    assert r.status_code == 202, r.text
    created: dict[str, Any] = r.json()
    assert created["audit"]["status"] == "pending" and created["job"]["kind"] == "audit"
    job = wait_job(c, created["job"]["id"], timeout=120)
    assert job["status"] == "succeeded", job
    return created


@pytest.fixture
def fake_run(serve: Any, fake_upstream: FakeOpenAIServer, any_db_url: str) -> Any:
    return serve(any_db_url, [fake_spec(fake_upstream)])


def test_audit_end_to_end(fake_run: Any, fake_upstream: FakeOpenAIServer) -> None:
    c = fake_run.client()
    ds = _dataset(c)
    # the dataset's examples are embedded once (a spectrum request embeds the train split)
    before = fake_upstream.request_count
    created = _audit(c, ds, splits=["train", "test"], folds=3, repeats=1)
    assert fake_upstream.request_count > before
    aid = created["audit"]["id"]
    job = c.get(f"/v1/jobs/{created['job']['id']}").json()
    assert job["stage"] == "audit" and job["progress"]["done"] == job["progress"]["total"] > 0
    assert job["result"]["audit_id"] == aid

    out = c.get(f"/v1/datasets/{ds}/audits/{aid}", params={"flagged_only": False}).json()
    assert out["status"] == "ready" and out["job_id"] == created["job"]["id"]
    s = out["summary"]
    assert s["n_examples"] == 24 and s["classes"] == ["neg", "pos"]
    assert 0.0 <= s["estimated_noise_rate"] <= 1.0
    assert len(s["joint"]) == 2 and abs(sum(map(sum, s["joint"])) - 1.0) < 1e-6
    assert s["noise_estimate"] == "anchors" and 0.0 <= s["agreement"] <= 1.0
    assert [round(sum(row), 6) for row in s["transition"]] == [1.0, 1.0]
    assert sum(p["n"] for p in s["per_class"]) == 24
    page = out["examples"]
    assert page["total"] == 24 and len(page["items"]) == 24
    scores = [e["score"] for e in page["items"]]
    assert scores == sorted(scores, reverse=True)  # -score by default
    assert {e["split"] for e in page["items"]} == {"train", "test"}
    first = page["items"][0]
    assert (
        first["text"]
        and first["given"] in ("neg", "pos")
        and first["suggested"]
        in (
            "neg",
            "pos",
        )
    )

    # paging and sorting
    p2 = c.get(
        f"/v1/datasets/{ds}/audits/{aid}",
        params={"flagged_only": False, "sort": "position", "limit": 5, "offset": 5},
    ).json()["examples"]
    assert [e["position"] for e in p2["items"]] == sorted(e["position"] for e in page["items"])[
        5:10
    ]
    flagged = c.get(f"/v1/datasets/{ds}/audits/{aid}").json()["examples"]
    assert flagged["flagged_only"] is True and flagged["total"] == s["n_flagged"]
    assert all(e["flagged"] for e in flagged["items"])

    # exports
    r = c.get(f"/v1/datasets/{ds}/audits/{aid}/export", params={"flagged_only": False})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 24 and set(rows[0]) >= {"text", "given", "suggested", "score", "flagged"}
    assert [float(x["score"]) for x in rows] == scores
    r = c.get(
        f"/v1/datasets/{ds}/audits/{aid}/export",
        params={"format": "jsonl", "flagged_only": False, "sort": "position"},
    )
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["position"] for x in lines] == sorted(x["position"] for x in lines)
    assert len(lines) == 24

    # a second audit of the same splits: every vector comes from the cache
    n = fake_upstream.request_count
    _audit(c, ds, splits=["train", "test"], folds=3, method="confident_learning")
    assert fake_upstream.request_count == n

    listed = c.get(f"/v1/datasets/{ds}/audits").json()
    assert listed["total"] == 2 and aid in [a["id"] for a in listed["items"]]

    # tenant isolation: tenant b sees none of it
    b = fake_run.client("b")
    for url in (
        f"/v1/datasets/{ds}/audits/{aid}",
        f"/v1/datasets/{ds}/audits/{aid}/export",
        f"/v1/datasets/{ds}/audits",
    ):
        assert_error(b.get(url), 404, "NotFound")
    assert_error(b.post(f"/v1/datasets/{ds}/audit", json={"backbone": "fake"}), 404, "NotFound")
    assert_error(b.delete(f"/v1/datasets/{ds}/audits/{aid}"), 404, "NotFound")
    ds_b = _dataset(b)
    assert_error(c.get(f"/v1/datasets/{ds_b}/audits/{aid}"), 404, "NotFound", "dataset_id")
    assert_error(b.get(f"/v1/datasets/{ds_b}/audits/{aid}"), 404, "NotFound", "audit_id")

    # a head trained through the audit: flagged train rows left out, the record says so
    n_flagged_train = sum(1 for e in page["items"] if e["flagged"] and e["split"] == "train")
    head = _head(
        c,
        ds,
        audit_id=aid,
        audit_use="exclude_flagged",
        method="lp",
        overrides={"loss": "gce", **FAST},
    )
    cfg = head["config"]
    assert cfg["audit"]["audit_id"] == aid and cfg["audit"]["use"] == "exclude_flagged"
    assert cfg["audit"]["requested"] == "exclude_flagged" and cfg["audit"]["choice"] is None
    assert cfg["audit"]["excluded"]["train"] == n_flagged_train
    assert cfg["n_train"] == 18 - n_flagged_train
    assert cfg["loss"] == "gce" and any(d.startswith("loss='gce'") for d in cfg["deviations"])
    # audit_use auto (the default): a nested CV decides, and the record says how
    auto = _head(c, ds, audit_id=aid, method="lr")["config"]
    a = auto["audit"]
    assert a["requested"] == "auto" and a["use"] in ("exclude_flagged", "all_rows")
    ch = a["choice"]
    assert ch["use"] == a["use"] and ch["folds"] == 3 and ch["c"] > 0
    # each arm chose its own C per outer fold, as the head does (not the audit's C)
    assert len(ch["c_all_rows"]) == len(ch["c_exclude_flagged"]) == 3
    assert all(v > 0 for v in ch["c_all_rows"] + ch["c_exclude_flagged"])
    assert ch["gain"] == pytest.approx(ch["accuracy_exclude_flagged"] - ch["accuracy_all_rows"])
    assert (a["use"] == "exclude_flagged") == (ch["gain"] > 0)
    dropped = n_flagged_train if a["use"] == "exclude_flagged" else 0
    assert a["excluded"]["train"] == dropped and auto["n_train"] == 18 - dropped
    # method auto through the audit also scores lp + GCE grown from lr (auto_noise_robust),
    # unless the overrides turn it off
    grid = {**FAST, "auto_min_per_class": 0, "auto_candidates": [{"method": "lr"}]}
    nr = _head(c, ds, audit_id=aid, method="auto", overrides=grid)["config"]
    assert nr["auto_noise_robust"] is True and nr["audit"]["audit_id"] == aid
    assert nr["auto_candidates"] == [{"method": "lr"}]  # the grid as asked for
    lr_cand, gce = nr["candidates"]
    assert gce["method"] == "lp" and gce["overrides"] == {"loss": "gce"} and gce["cv_scores"]
    assert lr_cand["method"] == "lr" and lr_cand["cv_scores"]
    off = {**grid, "auto_noise_robust": False}
    mine = _head(c, ds, audit_id=aid, method="auto", overrides=off)["config"]
    assert mine["auto_noise_robust"] is False and len(mine["candidates"]) == 1
    # an audit of the test split only: no trained-on row to check with, so every row is kept
    only_test = _audit(c, ds, splits=["test"], folds=3, repeats=1)["audit"]["id"]
    kept = _head(c, ds, audit_id=only_test, method="lr")["config"]
    assert kept["audit"]["use"] == "all_rows" and kept["n_train"] == 18
    assert "not possible" in kept["audit"]["choice"]["reason"]
    assert kept["audit"]["excluded"] == {"train": 0, "validation": 0, "target_validation": 0}
    plain = _head(c, ds, method="lr")
    assert plain["config"]["audit"] is None and plain["config"]["loss"] == "ce"
    # an audit of another dataset, or of another tenant, cannot be used
    other = _dataset(c)
    r = c.post("/v1/heads", json={"dataset_id": other, "backbone": "fake", "audit_id": aid})
    assert_error(r, 404, "NotFound", "audit_id")
    r = b.post("/v1/heads", json={"dataset_id": ds_b, "backbone": "fake", "audit_id": aid})
    assert_error(r, 404, "NotFound", "audit_id")

    assert c.delete(f"/v1/datasets/{ds}/audits/{aid}").status_code == 204
    assert_error(c.get(f"/v1/datasets/{ds}/audits/{aid}"), 404, "NotFound", "audit_id")


def test_audit_bad_inputs(serve: Any, fake_upstream: FakeOpenAIServer) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    recs = sentiment_records(12, ood=False)
    recs += [{"text": f"only pos {i}", "label": "pos", "split": "ood:x"} for i in range(6)]
    ds = _dataset(c, recs)
    url = f"/v1/datasets/{ds}/audit"
    assert_error(
        c.post("/v1/datasets/ds_nope/audit", json={"backbone": "fake"}),
        404,
        "NotFound",
        "dataset_id",
    )
    assert_error(c.post(url, json={"backbone": "nope"}), 422, "ValidationError", "backbone")
    assert_error(
        c.post(url, json={"backbone": "fake", "splits": ["train", "holdout"]}),
        422,
        "ValidationError",
        "splits[1]",
    )
    assert_error(
        c.post(url, json={"backbone": "fake", "splits": ["ood:x"]}),
        422,
        "ValidationError",
        "splits",
    )
    # 9 training rows per class: 10 folds are too many
    assert_error(
        c.post(url, json={"backbone": "fake", "folds": 10}), 422, "ValidationError", "folds"
    )
    assert_error(
        c.post(url, json={"backbone": "fake", "folds": 1}), 422, "ValidationError", "folds"
    )
    assert_error(
        c.post(url, json={"backbone": "fake", "method": "magic"}), 422, "ValidationError", "method"
    )
    assert_error(c.post(url, json={"backbone": "fake", "extra": 1}), 422, "ValidationError")
    assert_error(c.get(f"/v1/datasets/{ds}/audits/au_nope"), 404, "NotFound", "audit_id")
    assert c.get(f"/v1/datasets/{ds}/audits").json()["total"] == 0


def test_audit_cancelled_while_running(serve: Any, fake_upstream: FakeOpenAIServer) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    c = run.client()
    recs = [{"text": f"example {i}", "label": "ab"[i % 2], "split": "train"} for i in range(3000)]
    ds = _dataset(c, recs)
    r = c.post(f"/v1/datasets/{ds}/audit", json={"backbone": "fake", "folds": 20, "repeats": 10})
    assert r.status_code == 202, r.text
    created = r.json()
    job_id = created["job"]["id"]
    deadline = time.time() + 120
    while c.get(f"/v1/jobs/{job_id}").json()["stage"] != "audit":
        assert time.time() < deadline
        time.sleep(0.05)
    assert c.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    job = wait_job(c, job_id, timeout=120)
    assert job["status"] == "cancelled"
    audit = c.get(f"/v1/datasets/{ds}/audits/{created['audit']['id']}").json()
    assert audit["status"] == "cancelled" and audit["summary"] is None
    assert audit["examples"] is None
    r = c.get(f"/v1/datasets/{ds}/audits/{created['audit']['id']}/export")
    assert_error(r, 409, "Conflict", "audit_id")
    r = c.post(
        "/v1/heads",
        json={"dataset_id": ds, "backbone": "fake", "audit_id": created["audit"]["id"]},
    )
    assert_error(r, 422, "ValidationError", "audit_id")


FLIPPED = (0, 7, 14)  # rows whose label is flipped (rows alternate pos / neg)


@pytest.mark.slow
def test_audit_finds_flipped_labels_with_minilm(serve: Any) -> None:
    run = serve(None, [minilm_spec()])
    c = run.client()
    recs = [dict(r, split="train") for r in sentiment_records(12, ood=False)]  # 24 phrases
    for i in FLIPPED:
        recs[i]["label"] = "neg" if recs[i]["label"] == "pos" else "pos"
    ds = _dataset(c, recs)
    created = _audit(c, ds, backbone="minilm", folds=3)
    out = c.get(
        f"/v1/datasets/{ds}/audits/{created['audit']['id']}",
        params={"limit": 24, "flagged_only": False},
    ).json()
    top = [e["position"] for e in out["examples"]["items"]]  # all 24, highest score first
    assert sorted(top) == list(range(24))
    # 24 short phrases, 3 flips: two in the top 4, and the ranking separates flips from clean
    # rows (AUROC >= 0.75; chance is 0.5). One flip ("review 0") sits mid-list with MiniLM.
    assert len(set(FLIPPED) & set(top[:4])) >= 2, top
    rank = {p: i for i, p in enumerate(top)}
    clean = [p for p in top if p not in FLIPPED]
    auroc = np.mean([[rank[f] < rank[q] for q in clean] for f in FLIPPED])
    assert auroc >= 0.75, (auroc, top)
    for e in out["examples"]["items"]:
        if e["flagged"]:
            assert e["suggested"] != e["given"]


def test_summaries_stored_before_the_anchor_estimate_still_read() -> None:
    # audits made before 2026-12-07 stored no transition: they read as confident learning's
    from nmtune.service.audits.schemas import AuditSummary
    from nmtune.tuner.audit import audit_labels

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    x = (y[:, None] * 3.0 + rng.normal(size=(60, 4))).astype(np.float32)
    new = audit_labels(x, y, folds=3, c=1.0).summary()
    assert AuditSummary(**new).noise_estimate == "anchors"
    old = {k: v for k, v in new.items() if k not in ("transition", "noise_estimate", "agreement")}
    read = AuditSummary(**old)
    assert read.noise_estimate == "confident_joint" and read.transition is None
    assert read.agreement is None
