"""``Client`` and ``AsyncClient``: the nmtune API from Python, on httpx.

    from nmtune import Client
    client = Client("http://localhost:8000", api_key="nmt_...")   # or NMTUNE_BASE_URL / _API_KEY
    ds = client.datasets.create(texts=texts, labels=labels, splits=splits)
    head = client.heads.create(ds, backbone="minilm", method="auto").wait()
    head.predict(["what a film"])[0].label

Every call retries on 429 / 503 (honouring Retry-After) and on connection failures;
``heads.create`` sends an ``Idempotency-Key`` (one per call, kept across its retries), so a
retried create never trains twice. Errors are ``nmtune.errors`` types carrying the envelope.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from nmtune._http import Call, RetryPolicy, check, request_kwargs, settings, should_retry
from nmtune.errors import JobFailedError, TimeoutError
from nmtune.progress import ProgressCallback, make_progress
from nmtune.types import (
    AuditExample,
    AuditInfo,
    Dataset,
    HeadInfo,
    HeadSpectrum,
    Job,
    JobPage,
    Prediction,
)

__all__ = ["AsyncAudit", "AsyncClient", "AsyncHead", "Audit", "Client", "Head"]


# ------------------------------------------------------------------ request builders
def _id(obj: Any) -> str:
    return obj if isinstance(obj, str) else str(obj.id)


def _records(
    texts: Sequence[str] | None,
    labels: Sequence[str | int],
    splits: Sequence[str] | str | None,
    images: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    inputs = texts if texts is not None else images
    if inputs is None or (texts is not None and images is not None):
        raise ValueError("give exactly one of texts or images (base64)")
    if len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    if splits is None or isinstance(splits, str):
        split_list = [splits or "train"] * len(inputs)
    else:
        split_list = list(splits)
        if len(split_list) != len(inputs):
            raise ValueError(f"{len(inputs)} inputs but {len(split_list)} splits")
    key = "text" if texts is not None else "image"
    return [
        {key: x, "label": _label(y), "split": s}
        for x, y, s in zip(inputs, labels, split_list, strict=True)
    ]


def _label(value: Any) -> str | int:
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"labels are strings or integers, got {value!r}")
    return value


def _dataframe_columns(
    df: Any, text: str, label: str, split: str | None
) -> tuple[list[str], list[str | int], list[str] | None]:
    missing = [c for c in (text, label) if c not in df.columns]
    if missing:
        raise ValueError(f"DataFrame has no column(s) {missing}; pass text=/label= names")
    splits = [str(v) for v in df[split].tolist()] if split and split in df.columns else None
    return (
        [str(v) for v in df[text].tolist()],
        [_label(v) for v in df[label].tolist()],
        splits,
    )


def _create_dataset(
    name: str, records: list[dict[str, Any]], metadata: Any, long_texts: str | None = None
) -> Call:
    body: dict[str, Any] = {"name": name, "records": records}
    if metadata:
        body["metadata"] = dict(metadata)
    if long_texts is not None:
        body["long_texts"] = long_texts
    return Call("POST", "/v1/datasets", json=body, idempotent=False)


def _upload(
    path: str | Path, name: str | None, metadata: Any, long_texts: str | None = None
) -> Call:
    p = Path(path)
    kind = "text/csv" if p.suffix.lower() == ".csv" else "application/jsonl"
    data: dict[str, Any] = {"name": name or p.stem}
    if metadata:
        data["metadata"] = json.dumps(dict(metadata))
    if long_texts is not None:
        data["long_texts"] = long_texts
    return Call(
        "POST",
        "/v1/datasets/upload",
        files={"file": (p.name, p.read_bytes(), kind)},
        data=data,
        idempotent=False,
    )


def _vector_fields(name: str, backbone: str, backbone_identity: str) -> dict[str, Any]:
    return {"name": name, "backbone": backbone, "backbone_identity": backbone_identity}


def _from_vectors(
    vectors: Any,
    labels: Sequence[str | int],
    splits: Sequence[str] | str | None,
    texts: Sequence[str] | None,
    name: str,
    backbone: str,
    backbone_identity: str,
) -> Call:
    """POST /v1/datasets/vectors/upload with the vectors as a float32 .npy file and one JSONL
    record (label, split, optional text) per row: binary, not JSON floats."""
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))  # (n, dim)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (rows, dim) array, got shape {x.shape}")
    if len(labels) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} vectors but {len(labels)} labels")
    if texts is not None and len(texts) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} vectors but {len(texts)} texts")
    records = _records(list(texts) if texts is not None else [""] * x.shape[0], labels, splits)
    if texts is None:
        for rec in records:
            del rec["text"]  # no texts: label and split only
    npy = io.BytesIO()
    np.save(npy, x, allow_pickle=False)
    meta = "".join(json.dumps(r) + "\n" for r in records).encode()
    return Call(
        "POST",
        "/v1/datasets/vectors/upload",
        files={
            "vectors": ("vectors.npy", npy.getvalue(), "application/octet-stream"),
            "records": ("records.jsonl", meta, "application/jsonl"),
        },
        data=_vector_fields(name, backbone, backbone_identity),
        idempotent=False,
    )


def _upload_vectors(
    vectors: str | Path,
    records: str | Path,
    name: str | None,
    backbone: str,
    backbone_identity: str,
) -> Call:
    """POST /v1/datasets/vectors/upload of a .npy file and its JSONL / CSV records file."""
    v, r = Path(vectors), Path(records)
    kind = "text/csv" if r.suffix.lower() == ".csv" else "application/jsonl"
    return Call(
        "POST",
        "/v1/datasets/vectors/upload",
        files={
            "vectors": (v.name, v.read_bytes(), "application/octet-stream"),
            "records": (r.name, r.read_bytes(), kind),
        },
        data=_vector_fields(name or v.stem, backbone, backbone_identity),
        idempotent=False,
    )


def _create_head(
    dataset: Any,
    backbone: str,
    method: str,
    preset: str | None,
    overrides: dict[str, Any] | None,
    seed: int,
    name: str,
    metadata: Any,
    idempotency_key: str | None,
    audit: Any = None,
    audit_use: str | None = None,
) -> Call:
    body: dict[str, Any] = {
        "dataset_id": _id(dataset),
        "backbone": backbone,
        "method": method,
        "overrides": dict(overrides or {}),
        "seed": seed,
        "name": name,
    }
    if preset is not None:
        body["preset"] = preset
    if metadata:
        body["metadata"] = dict(metadata)
    if audit is not None:
        body["audit_id"] = _id(audit)
    if audit_use is not None:
        body["audit_use"] = audit_use
    key = idempotency_key or f"nmtune-py-{uuid.uuid4()}"
    # retry-safe: the key makes a repeated POST return the first head
    return Call("POST", "/v1/heads", json=body, headers={"Idempotency-Key": key})


def _create_audit(
    dataset: Any,
    backbone: str,
    splits: Sequence[str] | None,
    method: str,
    score: str,
    folds: int,
    repeats: int,
    seed: int,
) -> Call:
    body: dict[str, Any] = {
        "backbone": backbone,
        "method": method,
        "score": score,
        "folds": folds,
        "repeats": repeats,
        "seed": seed,
    }
    if splits is not None:
        body["splits"] = list(splits)
    return Call("POST", f"/v1/datasets/{_id(dataset)}/audit", json=body)


def _audit_path(dataset: Any, audit: Any) -> str:
    return f"/v1/datasets/{_id(dataset)}/audits/{_id(audit)}"


def _audit_page(path: str, flagged_only: bool, sort: str, limit: int, offset: int) -> Call:
    params: list[tuple[str, Any]] = [
        ("flagged_only", str(flagged_only).lower()),
        ("sort", sort),
        ("limit", limit),
        ("offset", offset),
    ]
    return Call("GET", path, params=params)


def _audit_export(path: str, fmt: str, flagged_only: bool, sort: str) -> Call:
    params = [("format", fmt), ("flagged_only", str(flagged_only).lower()), ("sort", sort)]
    return Call("GET", f"{path}/export", params=params)


def _done(job: Job, job_id: str, timeout: float | None, deadline: float | None) -> bool:
    """Whether to stop polling ``job``; raises TimeoutError past the deadline."""
    if job.done:
        return True
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
    return False


def _follow(
    client: Client,
    job_id: str,
    label: str,
    progress: bool | ProgressCallback,
    timeout: float | None,
    poll_interval: float,
    saw: Callable[[Job], None],
) -> Job:
    """Poll job ``job_id`` until it ends, rendering ``progress``; ``saw`` gets every poll."""
    render = make_progress(progress, label)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = client.jobs.get(job_id)
        saw(job)
        if render is not None:
            render(job)
        if _done(job, job_id, timeout, deadline):
            return job
        time.sleep(poll_interval)


async def _afollow(
    client: AsyncClient,
    job_id: str,
    label: str,
    progress: bool | ProgressCallback,
    timeout: float | None,
    poll_interval: float,
    saw: Callable[[Job], None],
) -> Job:
    """The async twin of :func:`_follow`."""
    render = make_progress(progress, label)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = await client.jobs.get(job_id)
        saw(job)
        if render is not None:
            render(job)
        if _done(job, job_id, timeout, deadline):
            return job
        await asyncio.sleep(poll_interval)


def _list_jobs(
    status: str | Iterable[str] | None,
    kind: str | None,
    head: Any,
    dataset: Any,
    limit: int,
    after: str | None,
) -> Call:
    params: list[tuple[str, Any]] = [("limit", limit)]
    if status is not None:
        params += [("status", s) for s in ([status] if isinstance(status, str) else status)]
    for key, value in (("kind", kind), ("after", after)):
        if value is not None:
            params.append((key, value))
    if head is not None:
        params.append(("head_id", _id(head)))
    if dataset is not None:
        params.append(("dataset_id", _id(dataset)))
    return Call("GET", "/v1/jobs", params=params)


def _predict(
    head_id: str,
    inputs: Sequence[str] | None,
    embeddings: Any,
    top_k: int | None,
) -> Call:
    if (inputs is None) == (embeddings is None):
        raise ValueError("give exactly one of inputs or embeddings")
    body: dict[str, Any] = {}
    if inputs is not None:
        body["inputs"] = [inputs] if isinstance(inputs, str) else list(inputs)
    else:
        rows = embeddings.tolist() if hasattr(embeddings, "tolist") else embeddings
        body["embeddings"] = [list(map(float, r)) for r in rows]
    if top_k is not None:
        body["top_k"] = top_k
    # predictions change nothing: safe to retry
    return Call("POST", f"/v1/heads/{head_id}/predict", json=body, idempotent=True)


def _spectrum(head_id: str, split: str | None) -> Call:
    return Call(
        "GET", f"/v1/heads/{head_id}/spectrum", params=[("split", split)] if split else None
    )


def _embeddings(head_id: str, inputs: Sequence[str]) -> Call:
    return Call("POST", "/v1/embeddings", json={"model": head_id, "input": list(inputs)})


def _vectors(body: dict[str, Any]) -> Any:
    import numpy as np

    rows = sorted(body["data"], key=lambda d: d["index"])
    return np.asarray([r["embedding"] for r in rows], dtype=np.float32)


def _pages(
    client: Client, path: str, params: list[tuple[str, Any]], page_size: int
) -> Iterator[dict[str, Any]]:
    after: str | None = None
    while True:
        query = [*params, ("limit", page_size)] + ([("after", after)] if after else [])
        body = client.json(Call("GET", path, params=query))
        yield from body["items"]
        if not body.get("has_more") or not body.get("next_after"):
            return
        after = body["next_after"]


# ------------------------------------------------------------------------ sync client
class Client:
    """The nmtune API, synchronous. ``base_url`` / ``api_key`` default to the environment
    variables NMTUNE_BASE_URL (else http://localhost:8000) and NMTUNE_API_KEY."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_retry_wait_s: float = 60.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        url, headers = settings(base_url, api_key)
        self.base_url = url
        self.retry = RetryPolicy(max_retries, backoff_s, max_retry_wait_s)
        self._http = http_client or httpx.Client(base_url=url, headers=headers, timeout=timeout)
        if http_client is not None:
            self._http.headers.update(headers)
            self._http.base_url = httpx.URL(url)
        self.datasets = Datasets(self)
        self.heads = Heads(self)
        self.jobs = Jobs(self)
        self.audits = Audits(self)

    def request(self, call: Call) -> httpx.Response:
        """Send ``call`` with the retry policy; the response, or its typed error."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.request(call.method, call.path, **request_kwargs(call))
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_retries or not should_retry(call, None, exc):
                    raise
            else:
                if attempt >= self.retry.max_retries or not should_retry(call, response, None):
                    return check(response)
            time.sleep(self.retry.wait_s(attempt, response))
            attempt += 1

    def json(self, call: Call) -> Any:
        return self.request(call).json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Datasets:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        texts: Sequence[str] | None = None,
        labels: Sequence[str | int] | None = None,
        splits: Sequence[str] | str | None = None,
        *,
        name: str = "dataset",
        images: Sequence[str] | None = None,
        records: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        long_texts: str | None = None,
    ) -> Dataset:
        """From parallel lists (``splits``: one per row, one name for all, or None for
        train), or from ``records`` as the API takes them. ``long_texts="truncate"`` cuts
        texts over the server's limit (recorded in ``truncation``) instead of a 422."""
        if records is None:
            if labels is None:
                raise ValueError("labels are required (or pass records=)")
            records = _records(texts, labels, splits, images)
        return Dataset.from_json(self._c.json(_create_dataset(name, records, metadata, long_texts)))

    def from_dataframe(
        self,
        df: Any,
        *,
        text: str = "text",
        label: str = "label",
        split: str | None = "split",
        name: str = "dataset",
        metadata: dict[str, Any] | None = None,
    ) -> Dataset:
        """From a pandas DataFrame with text / label (/ split) columns."""
        texts, labels, splits = _dataframe_columns(df, text, label, split)
        return self.create(texts, labels, splits, name=name, metadata=metadata)

    def upload(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        long_texts: str | None = None,
    ) -> Dataset:
        """From a JSONL or CSV file (columns text|image, label[, split])."""
        return Dataset.from_json(self._c.json(_upload(path, name, metadata, long_texts)))

    def from_vectors(
        self,
        vectors: Any,
        labels: Sequence[str | int],
        splits: Sequence[str] | str | None = None,
        *,
        backbone: str,
        backbone_identity: str,
        name: str = "dataset",
        texts: Sequence[str] | None = None,
    ) -> Dataset:
        """From precomputed vectors (an (n, dim) array, sent as a float32 .npy file) and n
        labels (``splits``: one per row, one name for all, or None for train; ``texts``:
        optional, kept with the rows). ``backbone`` names the model that computed them and
        ``backbone_identity`` pins its exact version: heads on the dataset train at once,
        with no backbone call."""
        call = _from_vectors(vectors, labels, splits, texts, name, backbone, backbone_identity)
        return Dataset.from_json(self._c.json(call))

    def upload_vectors(
        self,
        vectors: str | Path,
        records: str | Path,
        *,
        backbone: str,
        backbone_identity: str,
        name: str | None = None,
    ) -> Dataset:
        """From a .npy file of vectors (rows, dim) and a JSONL / CSV records file with
        ``label`` and optional ``split``, ``text``, one per vector, in order."""
        call = _upload_vectors(vectors, records, name, backbone, backbone_identity)
        return Dataset.from_json(self._c.json(call))

    def get(self, dataset: Any) -> Dataset:
        return Dataset.from_json(self._c.json(Call("GET", f"/v1/datasets/{_id(dataset)}")))

    def list(self, *, limit: int = 50, offset: int = 0) -> list[Dataset]:
        body = self._c.json(
            Call("GET", "/v1/datasets", params=[("limit", limit), ("offset", offset)])
        )
        return [Dataset.from_json(d) for d in body["items"]]

    def iter(self, *, page_size: int = 100) -> Iterator[Dataset]:
        """Every dataset, newest first, page by page (cursor pagination)."""
        for item in _pages(self._c, "/v1/datasets", [], page_size):
            yield Dataset.from_json(item)

    def delete(self, dataset: Any) -> None:
        self._c.request(Call("DELETE", f"/v1/datasets/{_id(dataset)}"))


class Jobs:
    def __init__(self, client: Client) -> None:
        self._c = client

    def get(self, job: Any) -> Job:
        return Job.from_json(self._c.json(Call("GET", f"/v1/jobs/{_id(job)}")))

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        kind: str | None = None,
        head: Any = None,
        dataset: Any = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        return JobPage.from_json(
            self._c.json(_list_jobs(status, kind, head, dataset, limit, after))
        )

    def cancel(self, job: Any) -> Job:
        return Job.from_json(
            self._c.json(Call("POST", f"/v1/jobs/{_id(job)}/cancel", idempotent=True))
        )


class Heads:
    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        dataset: Any,
        backbone: str,
        method: str = "nmtune",
        *,
        preset: str | None = None,
        overrides: dict[str, Any] | None = None,
        seed: int = 0,
        name: str = "",
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        audit: Any = None,
        audit_use: str | None = None,
    ) -> Head:
        """Queue training (returns at once); ``.wait()`` on the result follows it.
        ``audit``: a ready label audit of the dataset (``Audit`` or id) to train through;
        ``audit_use``: "auto" (the server's default) or "exclude_flagged"."""
        body = self._c.json(
            _create_head(
                dataset,
                backbone,
                method,
                preset,
                overrides,
                seed,
                name,
                metadata,
                idempotency_key,
                audit,
                audit_use,
            )
        )
        return Head(self._c, HeadInfo.from_json(body["head"]), Job.from_json(body["job"]))

    def get(self, head: Any) -> Head:
        return Head(
            self._c, HeadInfo.from_json(self._c.json(Call("GET", f"/v1/heads/{_id(head)}")))
        )

    def list(self, *, dataset: Any = None, limit: int = 50, offset: int = 0) -> list[Head]:
        params: list[tuple[str, Any]] = [("limit", limit), ("offset", offset)]
        if dataset is not None:
            params.append(("dataset_id", _id(dataset)))
        body = self._c.json(Call("GET", "/v1/heads", params=params))
        return [Head(self._c, HeadInfo.from_json(h)) for h in body["items"]]

    def iter(self, *, dataset: Any = None, page_size: int = 100) -> Iterator[Head]:
        """Every head (of ``dataset``), newest first, page by page (cursor pagination)."""
        params = [("dataset_id", _id(dataset))] if dataset is not None else []
        for item in _pages(self._c, "/v1/heads", params, page_size):
            yield Head(self._c, HeadInfo.from_json(item))

    def delete(self, head: Any) -> None:
        self._c.request(Call("DELETE", f"/v1/heads/{_id(head)}"))


class Head:
    """A head on the server: ``info`` (its last fetched HeadOut), ``job`` (its training job,
    when known); ``wait``, ``predict``, ``metrics``, ``spectrum``, ``export``, ``load``."""

    def __init__(self, client: Client, info: HeadInfo, job: Job | None = None) -> None:
        self._c = client
        self.info = info
        self.job = job

    def _saw(self, job: Job) -> None:
        self.job = job

    def __repr__(self) -> str:
        return f"Head({self.id!r}, method={self.info.method!r}, status={self.status!r})"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def status(self) -> str:
        return self.info.status

    def refresh(self) -> Head:
        self.info = HeadInfo.from_json(self._c.json(Call("GET", f"/v1/heads/{self.id}")))
        return self

    def wait(
        self,
        *,
        progress: bool | ProgressCallback = True,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> Head:
        """Block until training ends, showing stage, epoch and losses (``progress``: True,
        False, or a callback taking each changed Job). Raises JobFailedError when the job
        failed or was cancelled, nmtune.errors.TimeoutError past ``timeout`` seconds."""
        job_id = self.job.id if self.job else self.info.job_id
        if job_id is None:
            return self.refresh()
        job = _follow(self._c, job_id, self.id, progress, timeout, poll_interval, self._saw)
        self.refresh()
        if job.status != "succeeded":
            raise JobFailedError(job)
        return self

    @property
    def metrics(self) -> Any:
        """Scores per split (SplitMetrics; ``ood_average``: OodAverage); fetched when the
        head was not ready at the last look."""
        if self.info.metrics is None and self.info.status == "pending":
            self.refresh()
        return self.info.metrics

    def predict(
        self,
        inputs: Sequence[str] | str | None = None,
        *,
        embeddings: Any = None,
        top_k: int | None = None,
    ) -> list[Prediction]:
        """Texts (embedded by the server through the head's backbone) or vectors."""
        body = self._c.json(_predict(self.id, inputs, embeddings, top_k))  # type: ignore[arg-type]
        return [Prediction.from_json(p) for p in body["predictions"]]

    def embed(self, inputs: Sequence[str]) -> Any:
        """The head's adapted features (N, D) of texts (POST /v1/embeddings)."""
        return _vectors(self._c.json(_embeddings(self.id, inputs)))

    def spectrum(self, split: str | None = None) -> HeadSpectrum:
        return HeadSpectrum.from_json(self._c.json(_spectrum(self.id, split)))

    def plot_spectrum(self, split: str | None = None, ax: Any = None) -> Any:
        """Raw vs adapted singular values (needs matplotlib); returns the Axes."""
        return self.spectrum(split).plot(ax)

    def export(self, path: str | Path | None = None) -> bytes:
        """The export zip (GET /v1/heads/{id}/export); written to ``path`` when given."""
        data = self._c.request(Call("GET", f"/v1/heads/{self.id}/export")).content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def load(self) -> Any:
        """The head as an offline ``OfflineHead`` (numpy only), from a fresh export."""
        from nmtune.offline import load_head

        return load_head(self.export())

    def delete(self) -> None:
        self._c.heads.delete(self.id)


class Audits:
    """Label-noise audits of a dataset's labels (POST /v1/datasets/{id}/audit)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        dataset: Any,
        backbone: str,
        *,
        splits: Sequence[str] | None = None,
        method: str = "auto",
        score: str = "self_confidence",
        folds: int = 5,
        repeats: int = 2,
        seed: int = 0,
    ) -> Audit:
        """Queue an audit (returns at once); ``.wait()`` on the result follows it.
        ``splits``: the splits audited together (None: the server's default, train)."""
        call = _create_audit(dataset, backbone, splits, method, score, folds, repeats, seed)
        body = self._c.json(call)
        return Audit(self._c, AuditInfo.from_json(body["audit"]), Job.from_json(body["job"]))

    def get(self, dataset: Any, audit: Any) -> Audit:
        path = _audit_path(dataset, audit)
        return Audit(
            self._c, AuditInfo.from_json(self._c.json(_audit_page(path, True, "-score", 1, 0)))
        )

    def list(self, dataset: Any, *, limit: int = 50, offset: int = 0) -> list[Audit]:
        params: list[tuple[str, Any]] = [("limit", limit), ("offset", offset)]
        body = self._c.json(Call("GET", f"/v1/datasets/{_id(dataset)}/audits", params=params))
        return [Audit(self._c, AuditInfo.from_json(a)) for a in body["items"]]

    def delete(self, dataset: Any, audit: Any) -> None:
        self._c.request(Call("DELETE", _audit_path(dataset, audit)))


class _AuditState:
    """What Audit and AsyncAudit share: the last fetched ``info`` and the audit's ``job``."""

    info: AuditInfo
    job: Job | None

    def _saw(self, job: Job) -> None:
        self.job = job

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.id!r}, dataset={self.info.dataset_id!r}, status={self.status!r})"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def summary(self) -> dict[str, Any] | None:
        """AuditSummary JSON once ready (estimated_noise_rate, per_class, joint, ...)."""
        return self.info.summary

    @property
    def _path(self) -> str:
        return _audit_path(self.info.dataset_id, self.id)


class Audit(_AuditState):
    """An audit on the server: ``info`` (its last fetched AuditOut), ``job``; ``wait``,
    ``summary``, ``examples``, ``iter_examples``, ``export``."""

    def __init__(self, client: Client, info: AuditInfo, job: Job | None = None) -> None:
        self._c = client
        self.info = info
        self.job = job

    def refresh(self) -> Audit:
        self.info = AuditInfo.from_json(self._c.json(_audit_page(self._path, True, "-score", 1, 0)))
        return self

    def wait(
        self,
        *,
        progress: bool | ProgressCallback = True,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> Audit:
        """Block until the audit's job ends (as ``Head.wait``); raises JobFailedError when it
        failed or was cancelled, nmtune.errors.TimeoutError past ``timeout`` seconds."""
        job_id = self.job.id if self.job else self.info.job_id
        if job_id is None:
            return self.refresh()
        job = _follow(self._c, job_id, self.id, progress, timeout, poll_interval, self._saw)
        self.refresh()
        if job.status != "succeeded":
            raise JobFailedError(job)
        return self

    def examples(
        self, *, flagged_only: bool = True, sort: str = "-score", limit: int = 50, offset: int = 0
    ) -> list[AuditExample]:
        """One page of audited examples (``sort``: -score, score, position, -position)."""
        body = self._c.json(_audit_page(self._path, flagged_only, sort, limit, offset))
        page = body.get("examples") or {"items": []}
        return [AuditExample.from_json(e) for e in page["items"]]

    def iter_examples(
        self, *, flagged_only: bool = True, sort: str = "-score", page_size: int = 500
    ) -> Iterator[AuditExample]:
        """Every audited (or flagged) example, page by page."""
        offset = 0
        while True:
            body = self._c.json(_audit_page(self._path, flagged_only, sort, page_size, offset))
            page = body.get("examples") or {"items": [], "total": 0}
            yield from (AuditExample.from_json(e) for e in page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= int(page["total"]):
                return

    def export(
        self,
        path: str | Path | None = None,
        *,
        format: str = "csv",
        flagged_only: bool = True,
        sort: str = "-score",
    ) -> bytes:
        """The examples as CSV or JSONL (GET .../export); written to ``path`` when given."""
        data = self._c.request(_audit_export(self._path, format, flagged_only, sort)).content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def delete(self) -> None:
        self._c.audits.delete(self.info.dataset_id, self.id)


# ----------------------------------------------------------------------- async client
class AsyncClient:
    """The nmtune API on ``httpx.AsyncClient``: the same resources, every call awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_retry_wait_s: float = 60.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        url, headers = settings(base_url, api_key)
        self.base_url = url
        self.retry = RetryPolicy(max_retries, backoff_s, max_retry_wait_s)
        self._http = http_client or httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout
        )
        if http_client is not None:
            self._http.headers.update(headers)
            self._http.base_url = httpx.URL(url)
        self.datasets = AsyncDatasets(self)
        self.heads = AsyncHeads(self)
        self.jobs = AsyncJobs(self)
        self.audits = AsyncAudits(self)

    async def request(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(call.method, call.path, **request_kwargs(call))
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_retries or not should_retry(call, None, exc):
                    raise
            else:
                if attempt >= self.retry.max_retries or not should_retry(call, response, None):
                    return check(response)
            await asyncio.sleep(self.retry.wait_s(attempt, response))
            attempt += 1

    async def json(self, call: Call) -> Any:
        return (await self.request(call)).json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncDatasets:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        texts: Sequence[str] | None = None,
        labels: Sequence[str | int] | None = None,
        splits: Sequence[str] | str | None = None,
        *,
        name: str = "dataset",
        images: Sequence[str] | None = None,
        records: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        long_texts: str | None = None,
    ) -> Dataset:
        if records is None:
            if labels is None:
                raise ValueError("labels are required (or pass records=)")
            records = _records(texts, labels, splits, images)
        call = _create_dataset(name, records, metadata, long_texts)
        return Dataset.from_json(await self._c.json(call))

    async def from_dataframe(
        self,
        df: Any,
        *,
        text: str = "text",
        label: str = "label",
        split: str | None = "split",
        name: str = "dataset",
        metadata: dict[str, Any] | None = None,
    ) -> Dataset:
        texts, labels, splits = _dataframe_columns(df, text, label, split)
        return await self.create(texts, labels, splits, name=name, metadata=metadata)

    async def upload(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        long_texts: str | None = None,
    ) -> Dataset:
        return Dataset.from_json(await self._c.json(_upload(path, name, metadata, long_texts)))

    async def from_vectors(
        self,
        vectors: Any,
        labels: Sequence[str | int],
        splits: Sequence[str] | str | None = None,
        *,
        backbone: str,
        backbone_identity: str,
        name: str = "dataset",
        texts: Sequence[str] | None = None,
    ) -> Dataset:
        """See :meth:`Datasets.from_vectors`."""
        call = _from_vectors(vectors, labels, splits, texts, name, backbone, backbone_identity)
        return Dataset.from_json(await self._c.json(call))

    async def upload_vectors(
        self,
        vectors: str | Path,
        records: str | Path,
        *,
        backbone: str,
        backbone_identity: str,
        name: str | None = None,
    ) -> Dataset:
        """See :meth:`Datasets.upload_vectors`."""
        call = _upload_vectors(vectors, records, name, backbone, backbone_identity)
        return Dataset.from_json(await self._c.json(call))

    async def get(self, dataset: Any) -> Dataset:
        return Dataset.from_json(await self._c.json(Call("GET", f"/v1/datasets/{_id(dataset)}")))

    async def list(self, *, limit: int = 50, offset: int = 0) -> list[Dataset]:
        body = await self._c.json(
            Call("GET", "/v1/datasets", params=[("limit", limit), ("offset", offset)])
        )
        return [Dataset.from_json(d) for d in body["items"]]

    async def delete(self, dataset: Any) -> None:
        await self._c.request(Call("DELETE", f"/v1/datasets/{_id(dataset)}"))


class AsyncJobs:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def get(self, job: Any) -> Job:
        return Job.from_json(await self._c.json(Call("GET", f"/v1/jobs/{_id(job)}")))

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        kind: str | None = None,
        head: Any = None,
        dataset: Any = None,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        return JobPage.from_json(
            await self._c.json(_list_jobs(status, kind, head, dataset, limit, after))
        )

    async def cancel(self, job: Any) -> Job:
        return Job.from_json(
            await self._c.json(Call("POST", f"/v1/jobs/{_id(job)}/cancel", idempotent=True))
        )


class AsyncHeads:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        dataset: Any,
        backbone: str,
        method: str = "nmtune",
        *,
        preset: str | None = None,
        overrides: dict[str, Any] | None = None,
        seed: int = 0,
        name: str = "",
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        audit: Any = None,
        audit_use: str | None = None,
    ) -> AsyncHead:
        body = await self._c.json(
            _create_head(
                dataset,
                backbone,
                method,
                preset,
                overrides,
                seed,
                name,
                metadata,
                idempotency_key,
                audit,
                audit_use,
            )
        )
        return AsyncHead(self._c, HeadInfo.from_json(body["head"]), Job.from_json(body["job"]))

    async def get(self, head: Any) -> AsyncHead:
        body = await self._c.json(Call("GET", f"/v1/heads/{_id(head)}"))
        return AsyncHead(self._c, HeadInfo.from_json(body))

    async def list(
        self, *, dataset: Any = None, limit: int = 50, offset: int = 0
    ) -> list[AsyncHead]:
        params: list[tuple[str, Any]] = [("limit", limit), ("offset", offset)]
        if dataset is not None:
            params.append(("dataset_id", _id(dataset)))
        body = await self._c.json(Call("GET", "/v1/heads", params=params))
        return [AsyncHead(self._c, HeadInfo.from_json(h)) for h in body["items"]]

    async def delete(self, head: Any) -> None:
        await self._c.request(Call("DELETE", f"/v1/heads/{_id(head)}"))


class AsyncHead:
    """The async twin of :class:`Head` (``metrics`` is the last fetched value)."""

    def __init__(self, client: AsyncClient, info: HeadInfo, job: Job | None = None) -> None:
        self._c = client
        self.info = info
        self.job = job

    def _saw(self, job: Job) -> None:
        self.job = job

    def __repr__(self) -> str:
        return f"AsyncHead({self.id!r}, method={self.info.method!r}, status={self.status!r})"

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def metrics(self) -> Any:
        return self.info.metrics

    async def refresh(self) -> AsyncHead:
        self.info = HeadInfo.from_json(await self._c.json(Call("GET", f"/v1/heads/{self.id}")))
        return self

    async def wait(
        self,
        *,
        progress: bool | ProgressCallback = True,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> AsyncHead:
        job_id = self.job.id if self.job else self.info.job_id
        if job_id is None:
            return await self.refresh()
        job = await _afollow(self._c, job_id, self.id, progress, timeout, poll_interval, self._saw)
        await self.refresh()
        if job.status != "succeeded":
            raise JobFailedError(job)
        return self

    async def predict(
        self,
        inputs: Sequence[str] | str | None = None,
        *,
        embeddings: Any = None,
        top_k: int | None = None,
    ) -> list[Prediction]:
        body = await self._c.json(_predict(self.id, inputs, embeddings, top_k))  # type: ignore[arg-type]
        return [Prediction.from_json(p) for p in body["predictions"]]

    async def embed(self, inputs: Sequence[str]) -> Any:
        return _vectors(await self._c.json(_embeddings(self.id, inputs)))

    async def spectrum(self, split: str | None = None) -> HeadSpectrum:
        return HeadSpectrum.from_json(await self._c.json(_spectrum(self.id, split)))

    async def export(self, path: str | Path | None = None) -> bytes:
        data = (await self._c.request(Call("GET", f"/v1/heads/{self.id}/export"))).content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    async def load(self) -> Any:
        """The head as an offline ``OfflineHead`` (numpy only), from a fresh export."""
        from nmtune.offline import load_head

        return load_head(await self.export())

    async def delete(self) -> None:
        await self._c.heads.delete(self.id)


class AsyncAudits:
    """The async twin of :class:`Audits`."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        dataset: Any,
        backbone: str,
        *,
        splits: Sequence[str] | None = None,
        method: str = "auto",
        score: str = "self_confidence",
        folds: int = 5,
        repeats: int = 2,
        seed: int = 0,
    ) -> AsyncAudit:
        call = _create_audit(dataset, backbone, splits, method, score, folds, repeats, seed)
        body = await self._c.json(call)
        return AsyncAudit(self._c, AuditInfo.from_json(body["audit"]), Job.from_json(body["job"]))

    async def get(self, dataset: Any, audit: Any) -> AsyncAudit:
        body = await self._c.json(_audit_page(_audit_path(dataset, audit), True, "-score", 1, 0))
        return AsyncAudit(self._c, AuditInfo.from_json(body))

    async def list(self, dataset: Any, *, limit: int = 50, offset: int = 0) -> list[AsyncAudit]:
        params: list[tuple[str, Any]] = [("limit", limit), ("offset", offset)]
        call = Call("GET", f"/v1/datasets/{_id(dataset)}/audits", params=params)
        body = await self._c.json(call)
        return [AsyncAudit(self._c, AuditInfo.from_json(a)) for a in body["items"]]

    async def delete(self, dataset: Any, audit: Any) -> None:
        await self._c.request(Call("DELETE", _audit_path(dataset, audit)))


class AsyncAudit(_AuditState):
    """The async twin of :class:`Audit`."""

    def __init__(self, client: AsyncClient, info: AuditInfo, job: Job | None = None) -> None:
        self._c = client
        self.info = info
        self.job = job

    async def refresh(self) -> AsyncAudit:
        body = await self._c.json(_audit_page(self._path, True, "-score", 1, 0))
        self.info = AuditInfo.from_json(body)
        return self

    async def wait(
        self,
        *,
        progress: bool | ProgressCallback = True,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> AsyncAudit:
        job_id = self.job.id if self.job else self.info.job_id
        if job_id is None:
            return await self.refresh()
        job = await _afollow(self._c, job_id, self.id, progress, timeout, poll_interval, self._saw)
        await self.refresh()
        if job.status != "succeeded":
            raise JobFailedError(job)
        return self

    async def examples(
        self, *, flagged_only: bool = True, sort: str = "-score", limit: int = 50, offset: int = 0
    ) -> list[AuditExample]:
        body = await self._c.json(_audit_page(self._path, flagged_only, sort, limit, offset))
        page = body.get("examples") or {"items": []}
        return [AuditExample.from_json(e) for e in page["items"]]

    async def export(
        self, *, format: str = "csv", flagged_only: bool = True, sort: str = "-score"
    ) -> bytes:
        call = _audit_export(self._path, format, flagged_only, sort)
        return (await self._c.request(call)).content

    async def delete(self) -> None:
        await self._c.audits.delete(self.info.dataset_id, self.id)
