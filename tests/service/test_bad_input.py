"""Every bad input: status, envelope, field at fault, and nothing changed."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from nmtune.adapters import RateLimitedError, UnavailableError
from nmtune.service.datasets.models import Dataset, Example
from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job


def counts(run: Any) -> tuple[int, int, int, int]:
    with run.db.session() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(m)) or 0)  # type: ignore[return-value]
            for m in (Dataset, Example, Head, Job)
        )


def assert_error(r: Any, status: int, error: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail", "field"}
    assert body["error"] == error, body
    if field is not None:
        assert body["field"] == field, body
        assert field.split(".")[0].split("[")[0] in body["detail"]


@pytest.fixture
def run(serve: Any, fake_upstream: Any) -> Any:
    return serve(
        None,
        [fake_spec(fake_upstream)],
        max_text_chars=200,
        max_records=100,
        max_request_bytes=200_000,
        max_predict_batch=5,
    )


def good() -> list[dict[str, Any]]:
    return sentiment_records(4, ood=False)


BAD_DATASETS = [
    ("empty text", lambda r: r[2].update(text="   ") or r, 422, "records[2].text"),
    ("oversized text", lambda r: r[1].update(text="x" * 201) or r, 422, "records[1].text"),
    ("unknown split", lambda r: r[0].update(split="holdout") or r, 422, "records[0].split"),
    ("one class", lambda r: [x for x in r if x["label"] == "pos"], 422, "records"),
    (
        "too few per class",
        lambda r: (
            [x for x in r if x["label"] == "pos"] + [next(x for x in r if x["label"] == "neg")]
        ),
        422,
        None,
    ),
    (
        "test label unseen",
        lambda r: [*r, {"text": "meh", "label": "neutral", "split": "test"}],
        422,
        "records[8].label",
    ),
    ("mixed label kinds", lambda r: r[3].update(label=1) or r, 422, "records[3].label"),
    ("no train split", lambda r: [dict(x, split="test") for x in r], 422, "records"),
    ("bool label", lambda r: r[0].update(label=True) or r, 422, "records[0].label"),
    ("text and image", lambda r: r[0].update(image="aGk=") or r, 422, "records[0].image"),
    ("missing label", lambda r: r[0].pop("label") and r, 422, "records[0].label"),
    ("too many records", lambda r: r * 13, 413, "records"),
]


@pytest.mark.parametrize(
    ("case", "mutate", "status", "field"), BAD_DATASETS, ids=[c[0] for c in BAD_DATASETS]
)
def test_bad_dataset(run: Any, case: str, mutate: Any, status: int, field: str | None) -> None:
    before = counts(run)
    r = run.client().post("/v1/datasets", json={"name": "bad", "records": mutate(good())})
    err = "PayloadTooLarge" if status == 413 else "ValidationError"
    assert_error(r, status, err, field)
    assert counts(run) == before


def test_bad_image_dataset(run: Any) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 20).decode()
    recs = [{"image": png, "label": i % 2} for i in range(6)]
    recs[4]["image"] = "not base64!!"
    before = counts(run)
    assert_error(
        run.client().post("/v1/datasets", json={"name": "img", "records": recs}),
        422,
        "ValidationError",
        "records[4].image",
    )
    recs[4]["image"] = base64.b64encode(b"plain text, not an image").decode()
    assert_error(
        run.client().post("/v1/datasets", json={"name": "img", "records": recs}),
        422,
        "ValidationError",
        "records[4].image",
    )
    assert counts(run) == before


def test_request_body_too_large(run: Any) -> None:
    before = counts(run)
    recs = [{"text": "y" * 150, "label": i % 2} for i in range(2000)]
    r = run.client().post("/v1/datasets", json={"name": "big", "records": recs})
    assert_error(r, 413, "PayloadTooLarge")
    assert counts(run) == before


def test_malformed_json_and_union_messages_name_the_fault(run: Any) -> None:
    """A body that is not JSON names the body and the decoder's complaint (not a character
    offset as a field); a union's alternatives read as one message, not "(and 1 more)";
    pydantic's "Value error, " prefix is not shown."""
    before = counts(run)
    c = run.client()
    r = c.post("/v1/datasets", content=b'{"name": x}', headers={"content-type": "application/json"})
    assert_error(r, 422, "ValidationError", "body")
    assert r.json()["detail"].startswith("body: invalid JSON (") and "value" in r.json()["detail"]
    recs = good()
    recs[0]["label"] = None
    r = c.post("/v1/datasets", json={"name": "n", "records": recs})
    assert_error(r, 422, "ValidationError", "records[0].label")
    detail = r.json()["detail"]
    assert "a valid string or a valid integer" in detail and "more)" not in detail, detail
    r = c.post("/v1/heads", json={"dataset_id": "ds_x", "backbone": "fake", "method": "svm"})
    assert_error(r, 422, "ValidationError", "method")
    assert "Value error" not in r.json()["detail"] and "unknown method" in r.json()["detail"]
    assert counts(run) == before


@pytest.mark.parametrize(
    ("content", "filename", "where"),
    [
        (b'{"text": "a", "label": "x"}\n{not json}\n', "d.jsonl", "line 2"),
        (b'{"text": "a", "label": "x", "colour": 1}\n', "d.jsonl", "line 1"),
        (b"text,split\nhello,train\n", "d.csv", "label"),
        (b"\xff\xfe\x00bad", "d.jsonl", "UTF-8"),
        (b"", "d.jsonl", "no records"),
    ],
)
def test_malformed_files(run: Any, content: bytes, filename: str, where: str) -> None:
    before = counts(run)
    r = run.client().post(
        "/v1/datasets/upload", files={"file": (filename, content)}, data={"name": "f"}
    )
    assert_error(r, 422, "ValidationError", "file")
    assert where in r.json()["detail"]
    assert counts(run) == before


def test_upload_jsonl_and_csv(run: Any) -> None:
    import json

    lines = "\n".join(json.dumps(x) for x in good()).encode()
    r = run.client().post(
        "/v1/datasets/upload", files={"file": ("d.jsonl", lines)}, data={"name": "jsonl"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["n_examples"] == 8
    csv = "text,label,split\n" + "\n".join(
        f'"{x["text"]}",{x["label"]},{x["split"]}' for x in good()
    )
    r = run.client().post(
        "/v1/datasets/upload", files={"file": ("d.csv", csv.encode())}, data={"name": "csv"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["splits"]["train"]["count"] == 6


def _dataset(run: Any) -> str:
    r = run.client().post("/v1/datasets", json={"name": "ok", "records": good()})
    assert r.status_code == 201
    return str(r.json()["id"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"backbone": "nope", "method": "lp"}, 422, "backbone"),
        ({"backbone": "fake", "method": "svm"}, 422, "method"),
        (
            {"backbone": "fake", "method": "nmtune", "overrides": {"learning_rate_typo": 1}},
            422,
            "overrides.learning_rate_typo",
        ),
        (
            {"backbone": "fake", "method": "nmtune", "overrides": {"epochs": -3}},
            422,
            "overrides.epochs",
        ),
        ({"backbone": "fake", "method": "lp", "overrides": {"w_svd": 0.1}}, 422, "overrides.w_svd"),
        # the seed is the request's own field: as an override the worker would refuse it
        ({"backbone": "fake", "method": "nmtune", "overrides": {"seed": 5}}, 422, "overrides.seed"),
        ({"backbone": "fake", "method": "nmtune", "preset": "imaginary"}, 422, "preset"),
        ({"backbone": "fake", "method": "lp", "dataset_id": "ds_missing"}, 404, "dataset_id"),
    ],
)
def test_bad_head_requests(run: Any, body: dict[str, Any], status: int, field: str | None) -> None:
    ds = _dataset(run)
    before = counts(run)
    payload = {"dataset_id": ds, **body}
    r = run.client().post("/v1/heads", json=payload)
    assert_error(r, status, "NotFound" if status == 404 else "ValidationError", field)
    assert counts(run) == before


def test_bad_predictions(run: Any) -> None:
    c = run.client()
    ds = _dataset(run)
    created = post_head(c, ds, "lp", lp_epochs=1)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    url = f"/v1/heads/{created['head']['id']}/predict"
    before = counts(run)
    assert_error(
        c.post(url, json={"embeddings": [[0.0] * 3]}), 422, "ValidationError", "embeddings[0]"
    )
    assert_error(
        c.post(
            url,
            content=b'{"embeddings": [[' + b",".join([b"0.0"] * 15) + b", NaN]]}",
            headers={"content-type": "application/json"},
        ),
        422,
        "ValidationError",
        "embeddings[0][15]",
    )
    assert_error(c.post(url, json={"inputs": ["ok", ""]}), 422, "ValidationError", "inputs[1]")
    assert_error(c.post(url, json={"inputs": ["x" * 201]}), 422, "ValidationError", "inputs[0]")
    assert_error(c.post(url, json={"inputs": ["a"] * 6}), 413, "PayloadTooLarge", "inputs")
    assert_error(c.post(url, json={}), 422, "ValidationError")
    assert_error(
        c.post(url, json={"inputs": ["a"], "embeddings": [[0.0] * 16]}), 422, "ValidationError"
    )
    assert_error(c.post("/v1/heads/hd_nope/predict", json={"inputs": ["a"]}), 404, "NotFound")
    assert counts(run) == before


def test_unknown_split_in_spectrum_and_unknown_route(run: Any) -> None:
    c = run.client()
    ds = _dataset(run)
    assert_error(
        c.get(f"/v1/datasets/{ds}/spectrum", params={"split": "nope", "backbone": "fake"}),
        422,
        "ValidationError",
        "split",
    )
    assert_error(
        c.get(f"/v1/datasets/{ds}/spectrum", params={"backbone": "nah"}),
        422,
        "ValidationError",
        "backbone",
    )
    assert_error(c.get("/v1/nothing-here"), 404, "NotFound")
    assert_error(
        c.post("/v1/datasets", content=b"{broken", headers={"content-type": "application/json"}),
        422,
        "ValidationError",
    )


def test_text_backbone_on_an_image_dataset_is_refused_everywhere(run: Any) -> None:
    """One modality check (backbones.service.check_modality) behind heads, audits and
    split spectra: a 422 on `backbone` naming both modalities, and nothing created."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 20).decode()
    recs = [{"image": png, "label": i % 2} for i in range(8)]
    c = run.client()
    r = c.post("/v1/datasets", json={"name": "img", "records": recs})
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    before = counts(run)
    for r in (
        c.post("/v1/heads", json={"dataset_id": ds, "backbone": "fake", "method": "lr"}),
        c.post(f"/v1/datasets/{ds}/audit", json={"backbone": "fake", "folds": 2}),
        c.get(f"/v1/datasets/{ds}/spectrum", params={"split": "train", "backbone": "fake"}),
    ):
        assert_error(r, 422, "ValidationError", "backbone")
        assert "embeds text, the dataset holds image" in r.json()["detail"]
    assert counts(run) == before


def test_backbone_outage_is_one_503_with_retry_after(serve: Any, fake_upstream: Any) -> None:
    """The upstream embeddings API down: predict, classify and embeddings of new texts all
    answer 503 ServiceUnavailable in the same words, with Retry-After, and store nothing."""
    spec = {**fake_spec(fake_upstream), "max_retries": 0}
    run = serve(None, [spec])
    c = run.client()
    ds = _dataset(run)
    created = post_head(c, ds, "lp", lp_epochs=1)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    hid = created["head"]["id"]
    before = counts(run)
    calls = [
        (f"/v1/heads/{hid}/predict", {"inputs": ["never seen before"]}),
        ("/v1/classify", {"model": hid, "input": ["also new"]}),
        ("/v1/embeddings", {"model": hid, "input": ["and this"]}),
    ]
    try:
        for url, body in calls:
            fake_upstream.inject(status=503, times=5)
            r = c.post(url, json=body)
            assert_error(r, 503, "ServiceUnavailable", None)
            detail = r.json()["detail"]
            assert "backbone 'fake' is unavailable" in detail and "retry later" in detail, detail
            assert float(r.headers["retry-after"]) > 0
    finally:
        fake_upstream.reset()
    assert counts(run) == before


@pytest.mark.parametrize(
    ("error", "words", "retry_after"),
    [
        (UnavailableError("fake: down"), "is unavailable (fake: down)", 5.0),
        (RateLimitedError("fake: 429", retry_after=12.0), "is rate limited", 12.0),
    ],
)
def test_a_backbone_that_cannot_get_ready_is_the_same_503(
    error: Exception, words: str, retry_after: float
) -> None:
    """Before its first embed a remote backbone gets ready (e.g. learns its dimension); when
    that fails the answer is the failed embed's: 503, the same words, a Retry-After."""
    import asyncio

    from nmtune.service.backbones.service import get_backend
    from nmtune.service.errors import ServiceUnavailable

    class Down:
        name = "fake"

        async def ensure_ready(self) -> None:
            raise error

    class Registry:
        def names(self) -> list[str]:
            return ["fake"]

        def get(self, name: str) -> Down:
            return Down()

    with pytest.raises(ServiceUnavailable) as info:
        asyncio.run(get_backend(Registry(), "fake"))  # type: ignore[arg-type]
    assert f"backbone 'fake' {words}" in info.value.detail and "retry later" in info.value.detail
    assert info.value.retry_after == retry_after
