"""The client's HTTP behaviour against a mock transport: retries on 429 / 503 honouring
Retry-After, one Idempotency-Key per heads.create kept across its retries, typed errors
carrying the envelope, no retry of a non-idempotent call the server may have processed."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx
import pytest

from nmtune import AsyncClient, Client, errors
from nmtune._http import RetryPolicy, parse_retry_after

HEAD = {
    "id": "hd_1",
    "name": "",
    "dataset_id": "ds_1",
    "backbone": "fake",
    "backbone_identity": "x",
    "method": "lr",
    "preset": "robust",
    "overrides": {},
    "seed": 0,
    "status": "pending",
    "classes": None,
    "dim": None,
    "metadata": {},
    "config": None,
    "metrics": None,
    "spectra": None,
    "job_id": "job_1",
    "created_at": "2026-12-01T00:00:00Z",
    "trained_at": None,
}
JOB = {
    "id": "job_1",
    "kind": "train",
    "status": "queued",
    "stage": None,
    "progress": {"done": 0, "total": 0},
    "epochs": [],
    "error": None,
    "attempts": 0,
    "head_id": "hd_1",
    "dataset_id": "ds_1",
    "params": {},
    "result": None,
    "cancel_requested": False,
    "created_at": "2026-12-01T00:00:00Z",
    "started_at": None,
    "finished_at": None,
}


def scripted(
    responses: list[httpx.Response | Exception],
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def client_with(transport: httpx.MockTransport, **kw: Any) -> Client:
    return Client(
        "http://nmtune.test",
        "nmt_key",
        http_client=httpx.Client(transport=transport),
        backoff_s=0.01,
        **kw,
    )


def envelope(
    status: int, error: str, detail: str, field: str | None = None, **h: str
) -> httpx.Response:
    return httpx.Response(
        status, json={"error": error, "detail": detail, "field": field}, headers=h
    )


def test_create_head_retries_429_and_503_with_one_idempotency_key() -> None:
    transport, seen = scripted(
        [
            envelope(429, "RateLimited", "slow down", **{"Retry-After": "0"}),
            envelope(503, "ServiceUnavailable", "queue down", **{"Retry-After": "0.05"}),
            httpx.Response(202, json={"head": HEAD, "job": JOB}),
        ]
    )
    c = client_with(transport)
    t0 = time.perf_counter()
    head = c.heads.create("ds_1", backbone="fake", method="lr")
    assert time.perf_counter() - t0 >= 0.05  # the Retry-After was honoured
    assert head.id == "hd_1" and head.job is not None and head.job.status == "queued"
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 3 and len(keys) == 1 and next(iter(keys)).startswith("nmtune-py-")
    assert all(r.headers["Authorization"] == "Bearer nmt_key" for r in seen)
    assert json.loads(seen[0].content)["dataset_id"] == "ds_1"
    # a second create is a new request: a new key
    transport2, seen2 = scripted([httpx.Response(202, json={"head": HEAD, "job": JOB})])
    client_with(transport2).heads.create("ds_1", backbone="fake")
    assert seen2[0].headers["Idempotency-Key"] not in keys


def test_retries_run_out_into_a_typed_error() -> None:
    transport, seen = scripted(
        [envelope(503, "ServiceUnavailable", "queue down", **{"Retry-After": "0"})] * 3
    )
    c = client_with(transport, max_retries=2)
    with pytest.raises(errors.ServiceUnavailableError) as info:
        c.jobs.get("job_1")
    assert len(seen) == 3
    assert info.value.status_code == 503 and info.value.detail == "queue down"
    assert info.value.body == {"error": "ServiceUnavailable", "detail": "queue down", "field": None}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.AuthenticationError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.PayloadTooLargeError),
        (422, errors.ValidationError),
        (502, errors.UpstreamError),
        (500, errors.ServerError),
    ],
)
def test_errors_are_typed(status: int, cls: type[errors.APIError]) -> None:
    transport, seen = scripted([envelope(status, "SomeError", "bad", "records[3].label")])
    with pytest.raises(cls) as info:
        client_with(transport).datasets.get("ds_1")
    assert len(seen) == 1  # not retried
    assert info.value.error == "SomeError" and info.value.field == "records[3].label"
    assert isinstance(info.value, errors.NmtuneError)


def test_a_post_the_server_may_have_processed_is_not_retried() -> None:
    transport, seen = scripted([httpx.ReadTimeout("slow")])
    with pytest.raises(httpx.ReadTimeout):
        client_with(transport).datasets.create(["a", "b"], ["x", "y"])
    assert len(seen) == 1
    # but one that never reached the server is
    transport, seen = scripted(
        [
            httpx.ConnectError("refused"),
            httpx.Response(
                201,
                json={
                    "id": "ds_1",
                    "name": "dataset",
                    "modality": "text",
                    "label_kind": "str",
                    "n_examples": 2,
                    "classes": ["x", "y"],
                    "splits": {"train": {"count": 2, "labels": {"x": 1, "y": 1}}},
                    "metadata": {},
                    "created_at": "2026-12-01T00:00:00Z",
                },
            ),
        ]
    )
    ds = client_with(transport).datasets.create(["a", "b"], ["x", "y"])
    assert ds.id == "ds_1" and ds.splits["train"].labels == {"x": 1, "y": 1}
    assert len(seen) == 2


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("soon") is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after(when) or 0) <= 30
    policy = RetryPolicy(max_retries=3, backoff_s=1.0, max_wait_s=5.0)
    r = httpx.Response(429, headers={"Retry-After": "120"})
    assert policy.wait_s(0, r) == 5.0  # capped
    assert 0.5 <= policy.wait_s(0, None) <= 1.0
    assert 2.0 <= policy.wait_s(2, None) <= 4.0


def test_dataset_rows_are_checked_before_sending() -> None:
    transport, seen = scripted([])
    c = client_with(transport)
    with pytest.raises(ValueError, match="2 inputs but 1 labels"):
        c.datasets.create(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="splits"):
        c.datasets.create(["a", "b"], ["x", "y"], ["train"])
    assert seen == []


async def test_async_client_retries_and_types() -> None:
    responses: list[httpx.Response] = [
        envelope(429, "RateLimited", "slow down", **{"Retry-After": "0"}),
        httpx.Response(202, json={"head": HEAD, "job": JOB}),
        envelope(404, "NotFound", "job 'x' not found", "job_id"),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses.pop(0)

    async with AsyncClient(
        "http://nmtune.test",
        "k",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        backoff_s=0.01,
    ) as c:
        head = await c.heads.create("ds_1", backbone="fake")
        assert head.id == "hd_1"
        assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
        with pytest.raises(errors.NotFoundError) as info:
            await c.jobs.get("x")
        assert info.value.field == "job_id"


def test_wait_raises_with_the_failed_job_and_shows_progress(capsys: Any) -> None:
    running = {**JOB, "status": "running", "stage": "train", "progress": {"done": 1, "total": 4}}
    running["epochs"] = [
        {
            "method": "nmtune",
            "candidate": 0,
            "epoch": 1,
            "epochs": 4,
            "losses": {"ce": 0.5, "total": 0.7},
            "val_accuracy": 0.75,
            "val_macro_f1": 0.7,
            "elapsed_s": 1.0,
            "phase": "fit",
        }
    ]
    failed = {**running, "status": "failed", "error": {"type": "Boom", "message": "it broke"}}
    transport, _ = scripted(
        [
            httpx.Response(202, json={"head": HEAD, "job": JOB}),
            httpx.Response(200, json=running),
            httpx.Response(200, json=failed),
            httpx.Response(200, json={**HEAD, "status": "failed"}),
        ]
    )
    c = client_with(transport)
    head = c.heads.create("ds_1", backbone="fake")
    with pytest.raises(errors.JobFailedError, match="Boom: it broke") as info:
        head.wait(poll_interval=0)
    assert info.value.job.status == "failed" and head.status == "failed"
    err = capsys.readouterr().err
    assert "train" in err and "epoch 1/4" in err and "total=0.7000" in err and "Boom" in err


def test_progress_in_a_notebook_updates_one_display(monkeypatch: Any) -> None:
    import sys
    import types as pytypes

    from nmtune.progress import make_progress
    from nmtune.types import Job

    updates: list[str] = []

    class ZMQInteractiveShell:  # the class name IPython's kernel shell has
        pass

    class Handle:
        def update(self, obj: Any) -> None:
            updates.append(obj.data)

    class HTML:
        def __init__(self, data: str) -> None:
            self.data = data

    ipython = pytypes.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    display_mod = pytypes.ModuleType("IPython.display")
    display_mod.HTML = HTML  # type: ignore[attr-defined]
    display_mod.display = lambda obj, display_id=False: Handle()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)

    render = make_progress(True, "hd_1")
    assert render is not None
    running = {**JOB, "status": "running", "stage": "embed", "progress": {"done": 3, "total": 8}}
    render(Job.from_json(running))
    render(Job.from_json({**running, "status": "succeeded"}))
    assert len(updates) == 2
    assert '<progress value="3" max="8">' in updates[0] and "embed" in updates[0]
    assert "succeeded" in updates[1]
