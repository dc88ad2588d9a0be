"""The Python client (sync and async) and the official `openai` client against a real server
on loopback; every request the client sent is checked against the server's OpenAPI spec;
the README's Python quickstart runs as written against a server with the local MiniLM."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from nmtune import AsyncClient, Client, errors
from nmtune.adapters import build_backend
from nmtune.types import Job, SplitMetrics
from tests.client.contract import check_request
from tests.service.conftest import fake_spec, minilm_spec, sentiment_records

FAST = {"epochs": 2, "lp_epochs": 2, "min_steps": 4}
README = Path(__file__).resolve().parents[2] / "README.md"


def _columns(records: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    return (
        [r["text"] for r in records],
        [r["label"] for r in records],
        [r["split"] for r in records],
    )


@pytest.mark.slow
def test_client_end_to_end(serve: Any, fake_upstream: Any, tmp_path: Path) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]}, timeout=120)
    client = Client(run.base_url, run.key_a, http_client=http)
    texts, labels, splits = _columns(sentiment_records(12))

    ds = client.datasets.create(texts, labels, splits, name="s", metadata={"team": "a"})
    assert ds.classes == ["neg", "pos"] and ds.metadata == {"team": "a"}
    assert ds.splits["ood:tweets"].count == 16
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": texts, "label": labels, "split": splits})
    assert client.datasets.from_dataframe(df, name="df").n_examples == len(texts)
    f = tmp_path / "d.csv"
    df.to_csv(f, index=False)
    assert client.datasets.upload(f, metadata={"from": "csv"}).metadata == {"from": "csv"}

    seen: list[Job] = []
    head = client.heads.create(ds, backbone="fake", method="nmtune", overrides=FAST)
    assert head.status == "pending"
    assert head.wait(progress=seen.append) is head
    assert head.status == "ready" and seen[-1].status == "succeeded"
    assert any(j.epochs for j in seen) and seen[-1].epochs[-1].losses["total"] is not None
    test = head.metrics["test"]
    assert isinstance(test, SplitMetrics) and 0 <= test.accuracy <= 1
    assert head.metrics["ood_average"].splits == ["ood:tweets"]
    preds = head.predict(["a wonderful film", "a dull film"], top_k=1)
    raw = run.client().post(
        f"/v1/heads/{head.id}/predict", json={"inputs": ["a wonderful film", "a dull film"]}
    )
    assert [p.label for p in preds] == [p["label"] for p in raw.json()["predictions"]]
    spec = head.spectrum()
    assert spec.raw.n_features == fake_upstream.dim and spec.adapted.singular_values
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    assert head.plot_spectrum().get_yscale() == "log"

    offline = head.load()  # export -> numpy
    x = np.random.default_rng(1).normal(size=(5, fake_upstream.dim)).astype(np.float32)
    served = head.predict(embeddings=x)
    np.testing.assert_allclose(
        offline.predict_proba(x).max(axis=1), [p.probability for p in served], atol=1e-5
    )
    page = client.jobs.list(head=head)
    assert [j.id for j in page.items] == [head.job.id if head.job else ""]

    # typed errors with the envelope
    with pytest.raises(errors.NotFoundError) as nf:
        client.datasets.get("ds_nope")
    assert nf.value.field == "dataset_id"
    with pytest.raises(errors.ValidationError) as bad:
        client.heads.create(ds, backbone="fake", overrides={"nope": 1})
    assert bad.value.field == "overrides.nope"
    # the same Idempotency-Key twice: one head
    a = client.heads.create(ds, backbone="fake", method="lr", idempotency_key="k-1")
    b = client.heads.create(ds, backbone="fake", method="lr", idempotency_key="k-1")
    assert a.id == b.id
    a.wait(progress=False)

    # every request the client sent is an operation of the served spec
    spec_json = run.client().get("/openapi.json").json()
    # (how many requests depends on how often wait() polled: count distinct operations)
    ops = {(r.method, re.sub(r"/(ds|hd|job)_[0-9a-f]+", "/{id}", r.url.path)) for r in sent}
    assert len(ops) >= 10, sorted(ops)
    assert [p for r in sent for p in check_request(spec_json, r)] == []

    # the async client on the same server
    async def main() -> None:
        async with AsyncClient(run.base_url, run.key_a) as ac:
            h = await ac.heads.create(ds.id, backbone="fake", method="lr")
            await h.wait(progress=False)
            assert h.metrics is not None and "test" in h.metrics
            assert len(await h.predict(["great"])) == 1
            assert (await ac.jobs.get(h.job.id if h.job else "")).status == "succeeded"
            assert h.id in [x.id for x in await ac.heads.list(dataset=ds.id)]
            assert ds.id in [d.id for d in await ac.datasets.list(limit=200)]
            off = await h.load()
            assert off.head_id == h.id and off.predict(x) == [
                p.label for p in await h.predict(embeddings=x)
            ]
            with pytest.raises(errors.NotFoundError):
                await ac.heads.get("hd_nope")

    asyncio.run(main())

    # the official openai client: the head's adapted features, to 1e-5 of transform
    oa = openai.OpenAI(base_url=f"{run.base_url}/v1", api_key=run.key_a, max_retries=0)
    inputs = ["a wonderful film", "the worst meal", "omg great !!!"]
    for fmt in ("float", "base64"):
        kw: dict[str, Any] = {} if fmt == "base64" else {"encoding_format": "float"}
        out = oa.embeddings.create(model=head.id, input=inputs, **kw)
        z = np.asarray([d.embedding for d in out.data], dtype=np.float32)
        backbone = build_backend(fake_spec(fake_upstream))

        async def embed(b: Any = backbone) -> Any:
            await b.ensure_ready()
            try:
                return await b.embed(inputs)
            finally:
                await b.aclose()

        raw_x = asyncio.run(embed())
        np.testing.assert_allclose(z, offline.transform(raw_x), atol=1e-5)
        assert out.model == head.id and out.usage.prompt_tokens > 0
    assert np.allclose(head.embed(inputs), z, atol=1e-6)
    with pytest.raises(openai.NotFoundError):
        oa.embeddings.create(model="hd_nope", input=["x"])
    with pytest.raises(openai.UnprocessableEntityError):
        oa.embeddings.create(model=head.id, input=["x"], dimensions=3)

    # POST /v1/classify: plain texts, the predict route's answers
    raw_c = run.client()
    r = raw_c.post("/v1/classify", json={"model": head.id, "input": inputs, "top_k": 1})
    assert r.status_code == 200, r.text
    got = r.json()
    expected = head.predict(inputs)
    assert [d["label"] for d in got["data"]] == [p.label for p in expected]
    assert [d["index"] for d in got["data"]] == [0, 1, 2] and len(got["data"][0]["scores"]) == 1
    assert abs(got["data"][0]["score"] - expected[0].probability) < 1e-6
    r = raw_c.post("/v1/classify", json={"model": "hd_nope", "input": "x"})
    assert r.status_code == 404 and r.json()["field"] == "model"
    r = raw_c.post("/v1/classify", json={"model": head.id, "input": ["ok", "x" * 10**6]})
    assert r.status_code in (413, 422) and r.json()["field"] in ("input[1]", "input"), r.text
    client.close()


def _quickstart() -> str:
    text = README.read_text()
    m = re.search(r"<!-- quickstart-python -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README has no Python quickstart block"
    return m.group(1)


@pytest.mark.slow
def test_readme_python_quickstart_runs(serve: Any, capsys: Any) -> None:
    run = serve(None, [minilm_spec()])
    texts, labels, splits = _columns(sentiment_records(12))
    code = _quickstart().replace("http://localhost:8000", run.base_url)
    assert 3 <= len([ln for ln in code.splitlines() if ln.strip()]) <= 6
    env: dict[str, Any] = {"KEY": run.key_a, "texts": texts, "labels": labels, "splits": splits}
    exec(compile(code, "README quickstart", "exec"), env)
    head = env["head"]
    assert head.status == "ready"
    out = capsys.readouterr()
    assert re.search(r"\b(pos|neg)\b", out.out), out
    assert "succeeded" in out.err  # the progress line


def _vector_blobs(n: int, dim: int) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(3)
    y = np.array(["neg", "pos"] * n)
    x = rng.normal(size=(2 * n, dim)).astype(np.float32) + np.where(y == "pos", 1.5, -1.5)[:, None]
    splits = ["train" if i % 4 else "test" for i in range(2 * n)]
    return x, y.tolist(), splits


def test_client_vector_datasets_sync_and_async(serve: Any, tmp_path: Path) -> None:
    """datasets.from_vectors (an array + labels, sent as .npy) and upload_vectors (.npy +
    JSONL files), sync and async: stored as the arrays given, a head trains on them and
    predicts from embeddings."""
    run = serve(None, [])
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]}, timeout=120)
    client = Client(run.base_url, run.key_a, http_client=http)
    x, labels, splits = _vector_blobs(16, 12)
    ident = "test:vectors-v1"
    ds = client.datasets.from_vectors(
        x, labels, splits, backbone="byo", backbone_identity=ident, name="v",
        texts=[f"t{i}" for i in range(len(labels))],
    )  # fmt: skip
    assert (ds.modality, ds.n_examples, ds.dim) == ("vector", 32, 12)
    assert (ds.backbone, ds.backbone_identity) == ("byo", ident)
    assert ds.splits["train"].count == 24 and ds.classes == ["neg", "pos"]
    one_split = client.datasets.from_vectors(
        x[:8], labels[:8], "train", backbone="byo", backbone_identity=ident
    )
    assert one_split.splits["train"].count == 8
    with pytest.raises(ValueError, match="labels"):
        client.datasets.from_vectors(x, labels[:3], backbone="byo", backbone_identity=ident)

    head = client.heads.create(ds, backbone="byo", method="lr").wait(progress=False)
    assert head.status == "ready" and head.metrics["test"].accuracy >= 0.9
    test_rows = [i for i, s in enumerate(splits) if s == "test"]
    got = [p.label for p in head.predict(embeddings=x[test_rows])]
    assert sum(g == labels[i] for g, i in zip(got, test_rows, strict=True)) >= 0.9 * len(got)

    npy, meta = tmp_path / "v.npy", tmp_path / "r.jsonl"
    np.save(npy, x)
    meta.write_text(
        "".join(
            f'{{"label": "{lab}", "split": "{s}"}}\n' for lab, s in zip(labels, splits, strict=True)
        )
    )
    up = client.datasets.upload_vectors(npy, meta, backbone="byo", backbone_identity=ident)
    assert (up.name, up.n_examples, up.dim, up.splits["test"].count) == ("v", 32, 12, 8)

    async def main() -> None:
        async with AsyncClient(run.base_url, run.key_a) as ac:
            a = await ac.datasets.from_vectors(
                x, labels, splits, backbone="byo", backbone_identity=ident, name="av"
            )
            assert (a.name, a.n_examples, a.dim) == ("av", 32, 12)
            b = await ac.datasets.upload_vectors(
                npy, meta, backbone="byo", backbone_identity=ident, name="au"
            )
            assert (b.name, b.backbone_identity) == ("au", ident)

    asyncio.run(main())
    spec_json = run.client().get("/openapi.json").json()
    assert [p for r in sent for p in check_request(spec_json, r)] == []


def test_client_audits_sync_and_async(serve: Any, fake_upstream: Any, tmp_path: Path) -> None:
    run = serve(None, [fake_spec(fake_upstream)])
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]}, timeout=120)
    client = Client(run.base_url, run.key_a, http_client=http)
    texts, labels, splits = _columns(sentiment_records(12, ood=False))
    ds = client.datasets.create(texts, labels, splits, name="audit me")

    audit = client.audits.create(ds, "fake", splits=["train", "test"], folds=3, repeats=1)
    assert audit.status == "pending" and audit.job is not None
    assert audit.wait(progress=False) is audit and audit.status == "ready"
    s = audit.summary
    assert s is not None and s["n_examples"] == 24 and s["folds"] == 3
    every = list(audit.iter_examples(flagged_only=False, sort="position", page_size=7))
    assert [e.position for e in every] == sorted(e.position for e in every) and len(every) == 24
    assert {e.given for e in every} == {"neg", "pos"} and all(e.text for e in every)
    flagged = audit.examples(limit=1000)
    assert len(flagged) == s["n_flagged"] and all(e.flagged for e in flagged)
    top = audit.examples(flagged_only=False, limit=3)
    assert [e.score for e in top] == sorted((e.score for e in every), reverse=True)[:3]
    csv_bytes = audit.export(tmp_path / "a.csv", flagged_only=False)
    assert (tmp_path / "a.csv").read_bytes() == csv_bytes and csv_bytes.count(b"\n") == 25
    jsonl = audit.export(format="jsonl")
    assert jsonl.count(b"\n") == s["n_flagged"]
    assert client.audits.get(ds, audit.id).summary == s
    assert audit.id in [a.id for a in client.audits.list(ds)]

    # a head trained through it: the record says what was asked and what was done
    head = client.heads.create(ds, "fake", "lr", audit=audit, audit_use="exclude_flagged")
    cfg = head.wait(progress=False).info.config or {}
    assert cfg["audit"]["audit_id"] == audit.id and cfg["audit"]["use"] == "exclude_flagged"
    n_flagged_train = sum(1 for e in every if e.flagged and e.split == "train")
    assert cfg["audit"]["excluded"]["train"] == n_flagged_train
    spec_json = httpx.get(f"{run.base_url}/openapi.json").json()
    assert [p for r in sent for p in check_request(spec_json, r)] == []

    async def main() -> None:
        async with AsyncClient(run.base_url, run.key_a) as ac:
            a = await ac.audits.create(ds.id, "fake", folds=3, repeats=1, seed=1)
            await a.wait(progress=False)
            assert a.status == "ready" and a.info.splits == ["train"]
            assert len(await a.examples(flagged_only=False, limit=100)) == 18
            assert (await a.export(flagged_only=False)).count(b"\n") == 19
            assert (await ac.audits.get(ds.id, a.id)).id == a.id
            assert {x.id for x in await ac.audits.list(ds.id)} == {audit.id, a.id}
            h = await ac.heads.create(ds.id, "fake", "lr", audit=a.id)
            await h.wait(progress=False)
            assert h.info.config and h.info.config["audit"]["requested"] == "auto"
            await a.delete()
            with pytest.raises(errors.NotFoundError):
                await ac.audits.get(ds.id, a.id)

    asyncio.run(main())
    audit.delete()
    with pytest.raises(errors.NotFoundError):
        client.audits.get(ds, audit.id)
    client.close()
