"""Datasets from precomputed vectors (bring your own embeddings), over real HTTP, on SQLite
and PostgreSQL: heads train with no backbone call; predictions check dimension and identity;
binary uploads (.npy + records, Parquet, Arrow) and every refusal with its field."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import fake_spec, post_head, wait_job

IDENTITY = "openai:text-embedding-3-small@test"


def _blobs(n_per_class: int, dim: int, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Two separable classes; every 4th row is test."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(2, dim)).astype(np.float32) * 3
    x, labels, splits = [], [], []
    for i in range(n_per_class):
        for c, lab in enumerate(("pos", "neg")):
            x.append(centre[c] + rng.normal(size=dim).astype(np.float32) * 0.3)
            labels.append(lab)
            splits.append("test" if i % 4 == 3 else "train")
    return np.stack(x).astype(np.float32), labels, splits


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


def _jsonl(labels: list[Any], splits: list[str], texts: list[str] | None = None) -> bytes:
    rows = []
    for i, (lab, sp) in enumerate(zip(labels, splits, strict=True)):
        row: dict[str, Any] = {"label": lab, "split": sp}
        if texts is not None:
            row["text"] = texts[i]
        rows.append(json.dumps(row))
    return ("\n".join(rows) + "\n").encode()


def _form(name: str = "byo", identity: str = IDENTITY) -> dict[str, str]:
    return {"name": name, "backbone": "3small", "backbone_identity": identity}


def _upload(c: Any, x: np.ndarray, labels: list[Any], splits: list[str], **kw: Any) -> Any:
    files = {
        "vectors": ("v.npy", _npy(x), "application/octet-stream"),
        "records": ("r.jsonl", _jsonl(labels, splits, kw.pop("texts", None)), "application/json"),
    }
    return c.post("/v1/datasets/vectors/upload", data=_form(**kw), files=files)


def test_vector_dataset_trains_with_no_backbone_call_and_predicts(
    serve: Any, any_db_url: str, fake_upstream: FakeOpenAIServer
) -> None:
    run = serve(any_db_url, [fake_spec(fake_upstream)])
    c = run.client()
    x, labels, splits = _blobs(20, 24)
    r = _upload(c, x, labels, splits, texts=[f"t{i}" for i in range(len(labels))])
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["modality"] == "vector" and ds["dim"] == 24 and ds["n_examples"] == 40
    assert ds["backbone"] == "3small" and ds["backbone_identity"] == IDENTITY
    assert ds["splits"]["train"]["count"] == 30 and ds["classes"] == ["neg", "pos"]
    assert c.get(f"/v1/datasets/{ds['id']}").json()["backbone_identity"] == IDENTITY

    fake_upstream.reset()
    created = post_head(c, ds["id"], "lr", backbone="3small")
    assert created["head"]["backbone_identity"] == IDENTITY
    job = wait_job(c, created["job"]["id"])
    assert job["status"] == "succeeded", job
    assert fake_upstream.request_count == 0  # no backbone call at all
    head = c.get(f"/v1/heads/{created['head']['id']}").json()
    assert head["status"] == "ready" and head["dim"] == 24
    assert head["metrics"]["test"]["accuracy"] >= 0.9

    hid = head["id"]
    test_rows = [i for i, s in enumerate(splits) if s == "test"]
    body = {"embeddings": x[test_rows].tolist(), "backbone_identity": IDENTITY}
    r = c.post(f"/v1/heads/{hid}/predict", json=body)
    assert r.status_code == 200, r.text
    got = [p["label"] for p in r.json()["predictions"]]
    assert sum(g == labels[i] for g, i in zip(got, test_rows, strict=True)) >= 0.9 * len(got)
    # identity is optional; when given it must match
    assert (
        c.post(f"/v1/heads/{hid}/predict", json={"embeddings": x[:2].tolist()}).status_code == 200
    )
    r = c.post(
        f"/v1/heads/{hid}/predict",
        json={"embeddings": x[:2].tolist(), "backbone_identity": "openai:text-embedding-3-large"},
    )
    assert r.status_code == 409 and r.json()["field"] == "backbone_identity"
    r = c.post(f"/v1/heads/{hid}/predict", json={"embeddings": [[0.0] * 23]})
    assert r.status_code == 422 and r.json()["field"] == "embeddings[0]"
    # no configured backbone of that name: inputs cannot be embedded
    r = c.post(f"/v1/heads/{hid}/predict", json={"inputs": ["hello"]})
    assert r.status_code == 422 and r.json()["field"] == "inputs"
    assert "send `embeddings`" in r.json()["detail"]  # says what works instead
    # another tenant sees nothing
    assert run.client("b").get(f"/v1/datasets/{ds['id']}").status_code == 404
    assert c.delete(f"/v1/datasets/{ds['id']}").status_code == 204


def test_vector_dataset_from_json_and_head_backbone_rules(
    serve: Any, any_db_url: str, fake_upstream: FakeOpenAIServer
) -> None:
    run = serve(any_db_url, [fake_spec(fake_upstream)])
    c = run.client()
    x, labels, splits = _blobs(6, 16, seed=3)  # the fake backbone is 16-d
    records = [
        {"embedding": v.tolist(), "label": lab, "split": sp}
        for v, lab, sp in zip(x, labels, splits, strict=True)
    ]
    body = {"name": "j", "backbone": "3small", "backbone_identity": IDENTITY, "records": records}
    r = c.post("/v1/datasets/vectors", json=body)
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["modality"] == "vector" and ds["dim"] == 16

    # a configured backbone of another identity is refused, naming the field
    r = c.post("/v1/heads", json={"dataset_id": ds["id"], "backbone": "fake", "method": "lp"})
    assert r.status_code == 422 and r.json()["field"] == "backbone"
    # an unknown name that is not the dataset's own
    r = c.post("/v1/heads", json={"dataset_id": ds["id"], "backbone": "other", "method": "lp"})
    assert r.status_code == 422 and r.json()["field"] == "backbone"

    # a dataset declaring the configured backbone's identity: its head predicts from inputs too
    fake = next(b for b in c.get("/v1/backbones").json()["items"] if b["name"] == "fake")
    body["backbone_identity"] = fake["identity"]
    ds2 = c.post("/v1/datasets/vectors", json=body).json()
    fake_upstream.reset()
    created = post_head(c, ds2["id"], "lp", backbone="fake", lp_epochs=2)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    assert fake_upstream.request_count == 0
    hid = created["head"]["id"]
    r = c.post(f"/v1/heads/{hid}/predict", json={"inputs": ["new text"]})
    assert r.status_code == 200, r.text
    assert fake_upstream.request_count == 1


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda x, lab, sp: (x[:-1], lab, sp), 422, "vectors"),  # count mismatch
        (lambda x, lab, sp: (x.reshape(-1), lab, sp), 422, "vectors"),  # 1-D
        (lambda x, lab, sp: (_with(x, 3, 5, np.nan), lab, sp), 422, "vectors[3][5]"),
        (lambda x, lab, sp: (_with(x, 1, 0, np.inf), lab, sp), 422, "vectors[1][0]"),
        (
            lambda x, lab, sp: (x.astype(np.float64) * 1e300, lab, sp),
            422,
            "vectors[0][0]",
        ),  # beyond float32
        (lambda x, lab, sp: (x.astype(np.complex64), lab, sp), 422, "vectors"),
        (lambda x, lab, sp: (x, ["pos", 1, *lab[2:]], sp), 422, "records[1].label"),
        (lambda x, lab, sp: (x, lab, ["nope", *sp[1:]]), 422, "records[0].split"),
        (lambda x, lab, sp: (x, ["a", *lab[1:]], sp), 422, "records[0].label"),  # 1 example
        (lambda x, lab, sp: (x, lab, ["test"] * len(sp)), 422, "records"),  # no train
    ],
)
def test_npy_upload_refusals_name_the_field(
    serve: Any, mutate: Any, status: int, field: str
) -> None:
    run = serve(None, [])
    c = run.client()
    x, labels, splits = _blobs(4, 8)
    x2, labels2, splits2 = mutate(x, labels, splits)
    r = _upload(c, x2, labels2, splits2)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field, r.json()
    assert c.get("/v1/datasets").json()["total"] == 0  # nothing written


def _with(x: np.ndarray, i: int, j: int, v: float) -> np.ndarray:
    y = x.copy()
    y[i, j] = v
    return y


def test_upload_file_level_refusals(serve: Any) -> None:
    run = serve(None, [], max_vector_dim=64)
    c = run.client()
    x, labels, splits = _blobs(4, 8)
    meta = _jsonl(labels, splits)
    url = "/v1/datasets/vectors/upload"

    def post(files: dict[str, Any]) -> Any:
        return c.post(url, data=_form(), files=files)

    r = post({"vectors": ("v.npy", b"not an npy file", "x"), "records": ("r.jsonl", meta, "x")})
    assert r.status_code == 422 and r.json()["field"] == "vectors"
    # numpy would call these bytes "pickled data" and suggest allow_pickle: we say what it is
    assert "not a .npy file" in r.json()["detail"] and "pickle" not in r.json()["detail"]
    zipped = io.BytesIO()
    np.savez(zipped, x=x)
    r = post({"vectors": ("v.npy", zipped.getvalue(), "x"), "records": ("r.jsonl", meta, "x")})
    assert r.status_code == 422 and ".npz archive" in r.json()["detail"]
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = post({"vectors": ("v.npy", pickled.getvalue(), "x"), "records": ("r.jsonl", meta, "x")})
    assert r.status_code == 422 and r.json()["field"] == "vectors"  # never unpickled
    assert "Python objects" in r.json()["detail"]
    r = post(
        {
            "vectors": ("v.npy", _npy(np.zeros((8, 65), np.float32)), "x"),
            "records": ("r.jsonl", meta, "x"),
        }
    )
    assert r.status_code == 422 and r.json()["field"] == "vectors"  # dim above the limit
    r = post({"vectors": ("v.npy", _npy(x), "x")})
    assert r.status_code == 422 and r.json()["field"] == "records"
    r = post({"vectors": ("v.npy", _npy(x), "x"), "records": ("r.jsonl", b'{"lab": 1}\n', "x")})
    assert r.status_code == 422 and r.json()["field"] == "records"
    r = post({"vectors": ("v.npy", _npy(x), "x"), "records": ("r.jsonl", b"{oops\n", "x")})
    assert r.status_code == 422 and "line 1" in r.json()["detail"]
    r = post({"file": ("t.csv", b"a,b\n", "text/csv")})
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = post({"file": ("t.parquet", b"garbage", "x")})
    assert r.status_code == 422 and r.json()["field"] == "file"
    # CSV records work, integer labels detected
    csv = "label,split\n" + "".join(
        f"{int(lab == 'pos')},{sp}\n" for lab, sp in zip(labels, splits, strict=True)
    )
    r = post({"vectors": ("v.npy", _npy(x), "x"), "records": ("r.csv", csv.encode(), "text/csv")})
    assert r.status_code == 201, r.text
    assert r.json()["label_kind"] == "int" and r.json()["classes"] == [0, 1]


def test_json_refusals(serve: Any) -> None:
    run = serve(None, [])
    c = run.client()
    good = [{"embedding": [1.0, 0.0], "label": "a"}, {"embedding": [0.0, 1.0], "label": "a"}]
    good += [{"embedding": [1.0, 1.0], "label": "b"}, {"embedding": [0.5, 1.0], "label": "b"}]
    base = {"name": "j", "backbone": "m", "backbone_identity": "m:1"}
    assert c.post("/v1/datasets/vectors", json={**base, "records": good}).status_code == 201
    bad = [*good[:3], {"embedding": [1.0], "label": "b"}]
    r = c.post("/v1/datasets/vectors", json={**base, "records": bad})
    assert r.status_code == 422 and r.json()["field"] == "records[3].embedding"
    bad = [*good[:3], {"embedding": [1.0, 1e39], "label": "b"}]
    r = c.post("/v1/datasets/vectors", json={**base, "records": bad})
    assert r.status_code == 422 and r.json()["field"] == "records[3].embedding[1]"
    r = c.post("/v1/datasets/vectors", json={**base, "backbone_identity": "", "records": good})
    assert r.status_code == 422


def test_parquet_and_arrow_uploads(serve: Any, any_db_url: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    run = serve(any_db_url, [])
    c = run.client()
    x, labels, splits = _blobs(5, 12)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 12)
    tbl = pa.table({"embedding": emb, "label": labels, "split": splits})
    buf = io.BytesIO()
    pq.write_table(tbl, buf)
    r = c.post(
        "/v1/datasets/vectors/upload",
        data=_form("pq"),
        files={"file": ("t.parquet", buf.getvalue(), "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["dim"] == 12 and ds["n_examples"] == 10
    created = post_head(c, ds["id"], "lr", backbone="3small")
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"

    # Arrow IPC, variable-size lists of float64; a row of another length is refused
    lists = pa.array([list(map(float, v)) for v in x])
    sink = io.BytesIO()
    t2 = pa.table({"embedding": lists, "label": labels})
    with pa.ipc.new_file(sink, t2.schema) as w:
        w.write_table(t2)
    r = c.post(
        "/v1/datasets/vectors/upload",
        data=_form("ipc"),
        files={"file": ("t.arrow", sink.getvalue(), "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    ragged = pa.table(
        {"embedding": pa.array([[1.0, 2.0]] * 9 + [[1.0, 2.0, 3.0]]), "label": labels}
    )
    buf = io.BytesIO()
    pq.write_table(ragged, buf)
    r = c.post(
        "/v1/datasets/vectors/upload",
        data=_form("bad"),
        files={"file": ("t.parquet", buf.getvalue(), "x")},
    )
    assert r.status_code == 422 and r.json()["field"] == "file.embedding"


def test_vector_dataset_spectrum_uses_its_own_vectors(serve: Any) -> None:
    run = serve(None, [])
    c = run.client()
    x, labels, splits = _blobs(10, 8)
    ds = _upload(c, x, labels, splits).json()
    r = c.get(f"/v1/datasets/{ds['id']}/spectrum", params={"split": "train", "backbone": "3small"})
    assert r.status_code == 200, r.text
    assert r.json()["spectrum"]["n_samples"] == 16 and r.json()["spectrum"]["n_features"] == 8
    r = c.get(f"/v1/datasets/{ds['id']}/spectrum", params={"split": "train", "backbone": "x"})
    assert r.status_code == 422 and r.json()["field"] == "backbone"


def test_vector_dataset_audit_reads_its_own_vectors(
    serve: Any, any_db_url: str, fake_upstream: FakeOpenAIServer
) -> None:
    """A vector dataset is audited on the vectors it holds (no backbone call, the declared
    backbone's name), finds planted flips, and a head trains through the audit."""
    run = serve(any_db_url, [fake_spec(fake_upstream)])
    c = run.client()
    x, labels, splits = _blobs(20, 16, seed=5)
    flipped = [i for i, sp in enumerate(splits) if sp == "train"][:3]
    for i in flipped:
        labels[i] = "neg" if labels[i] == "pos" else "pos"
    records = [
        {"embedding": v.tolist(), "label": lab, "split": sp}
        for v, lab, sp in zip(x, labels, splits, strict=True)
    ]
    body = {"name": "au", "backbone": "3small", "backbone_identity": IDENTITY, "records": records}
    ds = c.post("/v1/datasets/vectors", json=body).json()["id"]
    url = f"/v1/datasets/{ds}/audit"
    for wrong in ("fake", "other"):  # a configured backbone, an unknown name: not its vectors
        r = c.post(url, json={"backbone": wrong, "folds": 3})
        assert r.status_code == 422 and r.json()["field"] == "backbone", r.text
    fake_upstream.reset()
    r = c.post(url, json={"backbone": "3small", "folds": 3})
    assert r.status_code == 202, r.text
    audit = r.json()["audit"]
    assert wait_job(c, r.json()["job"]["id"])["status"] == "succeeded"
    out = c.get(f"/v1/datasets/{ds}/audits/{audit['id']}", params={"limit": 10}).json()
    assert out["status"] == "ready" and out["backbone"] == "3small"
    assert {e["position"] for e in out["examples"]["items"]} == set(flipped)  # flagged only
    r = c.post(
        "/v1/heads",
        json={
            "dataset_id": ds,
            "backbone": "3small",
            "method": "lr",
            "audit_id": audit["id"],
            "audit_use": "exclude_flagged",
        },
    )
    assert r.status_code == 202, r.text
    head = r.json()
    assert wait_job(c, head["job"]["id"])["status"] == "succeeded"
    config = c.get(f"/v1/heads/{head['head']['id']}").json()["config"]
    assert config["audit"]["use"] == "exclude_flagged" and config["audit"]["n_flagged"] == 3
    assert fake_upstream.request_count == 0
