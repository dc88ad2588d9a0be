"""End to end over real HTTP with the real MiniLM backbone, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.service.conftest import minilm_spec, post_head, sentiment_records, wait_job

FAST = {"epochs": 8, "lp_epochs": 8, "min_steps": 60}  # small data: few steps suffice here


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str | None:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return None


@pytest.mark.slow
def test_dataset_to_prediction_to_spectrum(serve: Any, db_url: str | None) -> None:
    run = serve(db_url, [minilm_spec()])
    c = run.client()

    r = c.get("/v1/backbones")
    assert r.status_code == 200
    assert [b["name"] for b in r.json()["items"]] == ["minilm"]

    r = c.post("/v1/datasets", json={"name": "sentiment", "records": sentiment_records()})
    assert r.status_code == 201, r.text
    ds = r.json()
    assert set(ds["splits"]) == {"train", "test", "ood:tweets"}
    assert ds["classes"] == ["neg", "pos"]
    assert ds["splits"]["ood:tweets"]["labels"] == {"neg": 8, "pos": 8}

    heads: dict[str, dict[str, Any]] = {}
    for method in ("lr", "lp", "mlp", "nmtune", "auto"):
        overrides = dict(FAST)
        r = c.post(
            "/v1/heads",
            json={
                "dataset_id": ds["id"],
                "backbone": "minilm",
                "method": method,
                "overrides": overrides,
            },
        )
        assert r.status_code == 202, r.text
        created = r.json()
        assert created["job"]["status"] in ("queued", "running")
        job = wait_job(c, created["job"]["id"])
        assert job["status"] == "succeeded", job
        assert job["progress"]["total"] > 0
        if method == "lr":  # one report per C of the cross-validated path
            assert [e["epoch"] for e in job["epochs"]] == list(range(1, 11))
        elif method != "auto":
            # 36 training rows: k-fold CV chooses the epoch (a report per fold), then a refit
            assert job["epochs"] and all(e["epochs"] <= FAST["epochs"] for e in job["epochs"])
            assert {"ce", "mse", "cov", "svd", "total"} <= set(job["epochs"][-1]["losses"])
        head = c.get(f"/v1/heads/{created['head']['id']}").json()
        assert head["status"] == "ready"
        assert head["dim"] == 384
        assert head["classes"] == ["neg", "pos"]
        for split in ("train", "test", "ood:tweets"):
            assert 0.0 <= head["metrics"][split]["accuracy"] <= 1.0
            assert "macro_f1" in head["metrics"][split]
        assert head["metrics"]["test"]["accuracy"] >= 0.75, head["metrics"]["test"]
        assert head["metrics"]["ood_average"]["splits"] == ["ood:tweets"]
        assert head["config"]["method"] in ("lr", "lp", "mlp", "nmtune")
        assert head["config"]["n_train"] == 36 and head["config"]["selection"]["signal"] == "cv"
        heads[method] = head
    assert heads["auto"]["config"]["candidates"]

    # predict with inputs (through the cache) and with embeddings
    hid = heads["nmtune"]["id"]
    r = c.post(
        f"/v1/heads/{hid}/predict",
        json={"inputs": ["I loved it, wonderful", "terrible, a waste of time"]},
    )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == ["pos", "neg"]
    assert abs(sum(s["probability"] for s in preds[0]["scores"]) - 1.0) < 1e-4
    r = c.post(f"/v1/heads/{hid}/predict", json={"embeddings": [[0.01] * 384], "top_k": 1})
    assert r.status_code == 200
    assert len(r.json()["predictions"][0]["scores"]) == 1

    # head spectra: raw vs adapted, JSON and SVG
    r = c.get(f"/v1/heads/{hid}/spectrum", params={"split": "ood:tweets"})
    assert r.status_code == 200, r.text
    spec = r.json()
    assert spec["raw"]["n_features"] == 384 and spec["adapted"]["n_samples"] == 16
    r = c.get(f"/v1/heads/{hid}/spectrum", params={"format": "svg"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "adapted" in r.text

    # dataset spectrum: the split was embedded during training, so it is served from cache
    r = c.get(f"/v1/datasets/{ds['id']}/spectrum", params={"split": "train", "backbone": "minilm"})
    assert r.status_code == 200, r.text
    body = r.json()["spectrum"]
    assert body["n_samples"] == 36 and body["sve"] > 0 and body["lsvr"] > 0
    r = c.get(
        f"/v1/datasets/{ds['id']}/spectrum",
        params={"split": "test", "backbone": "minilm", "format": "svg"},
    )
    assert r.status_code == 200 and "<svg" in r.text

    # server-sent events for a finished job: one job event and the end event
    with c.stream("GET", f"/v1/jobs/{heads['lp']['job_id']}/events") as resp:
        lines = [ln for ln in resp.iter_lines() if ln.startswith("data:")]
    assert json.loads(lines[0][5:])["status"] == "succeeded"
    assert json.loads(lines[-1][5:]) == {"status": "succeeded"}

    # list + delete
    assert c.get("/v1/heads").json()["total"] == 5
    assert c.delete(f"/v1/heads/{heads['lp']['id']}").status_code == 204
    assert c.get(f"/v1/heads/{heads['lp']['id']}").status_code == 404
    assert c.get("/v1/datasets").json()["total"] == 1


@pytest.mark.slow
def test_dataset_spectrum_embeds_uncached_split_as_job(serve: Any) -> None:
    run = serve(None, [minilm_spec()])
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "s", "records": sentiment_records(8)}).json()
    r = c.get(f"/v1/datasets/{ds['id']}/spectrum", params={"split": "train", "backbone": "minilm"})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "embed"
    r = c.get(
        f"/v1/datasets/{ds['id']}/spectrum",
        params={"split": "train", "backbone": "minilm", "center": "false", "normalize": "true"},
    )
    assert r.status_code == 200
    assert r.json()["spectrum"]["options"]["normalize"] is True


@pytest.mark.slow
def test_target_domain_validation_selects(serve: Any) -> None:
    """A `validation:ood:<name>` split is what selects (lr's C, epochs, auto's candidate); it
    is never trained on, and the head's record says so."""
    run = serve(None, [minilm_spec()])
    c = run.client()
    recs = sentiment_records()
    for r in recs[-8:]:  # half of the tweets become labelled target-domain validation data
        r["split"] = "validation:ood:tweets"
    r = c.post("/v1/datasets", json={"name": "target", "records": recs})
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["splits"]["validation:ood:tweets"]["count"] == 8
    for method in ("lr", "auto"):
        created = post_head(c, ds["id"], method, backbone="minilm", **FAST)
        job = wait_job(c, created["job"]["id"])
        assert job["status"] == "succeeded", job
        head = c.get(f"/v1/heads/{created['head']['id']}").json()
        sel = head["config"]["selection"]
        assert sel["signal"] == "target" and sel["n_selection"] == 8
        assert head["config"]["n_train"] == 36  # train only: the target rows are not trained on
        assert head["metrics"]["ood_average"]["splits"] == ["ood:tweets"]
        assert "validation:ood:tweets" in head["metrics"]
        if method == "lr":
            assert sel["lr"]["c_selection"] == "eval"
