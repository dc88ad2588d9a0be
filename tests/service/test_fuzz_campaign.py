"""Issue 12's bounded fuzz campaign, on SQLite and on PostgreSQL, over real HTTP:

1. schemathesis, stateless: every operation of the service's own OpenAPI spec, generated
   cases (ids pointed at real objects half of the time, to reach deep paths);
2. schemathesis, stateful: the API workflow schemathesis infers from the spec (create a
   dataset, then use its id in later calls, ...), a bounded number of scenarios;
3. a corpus of hostile strings and numbers (surrogates, NUL and control characters, huge
   integers, long strings, Unicode normalisation, path traversal, SQL-ish text, invalid
   UTF-8, NaN) put into every field of every write route, path ids and query parameters.

Every case must answer < 500 within 10 s (a request still open after 10 s counts as a
hang), and a rejected request (>= 400) must leave the row counts of the main tables as they
were. Accepted jobs are cancelled at once, so random hyper-parameters do not keep the CPU
busy. The campaign prints its case counts (``-s`` shows them; the summary line is also in
the assertion message on failure). Bounded: ``NMTUNE_FUZZ_SCALE`` (default 1) scales every
example count.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from nmtune.service.audits.models import Audit
from nmtune.service.auth.models import ApiKey, Tenant
from nmtune.service.datasets.models import Dataset, DatasetVectors, Example
from nmtune.service.embeddings.models import DatasetFeatures
from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job
from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job

SCALE = float(os.environ.get("NMTUNE_FUZZ_SCALE", "1"))
STATELESS_EXAMPLES = max(1, round(15 * SCALE))  # per operation
STATEFUL_SCENARIOS = max(1, round(20 * SCALE))
STATEFUL_STEPS = 8
HANG_S = 10.0
TABLES = (Tenant, ApiKey, Dataset, Example, DatasetVectors, DatasetFeatures, Head, Job, Audit)

HUGE = 10**400
HOSTILE: list[Any] = [
    "\ud800",
    "a\udfffb",
    "\ud83d",
    "\x00",
    "a\x00b",
    "\x01\x02\x07\x08\x0b\x0c\x1b[31m\x7f",
    "test\n",
    "\r\n",
    "\t",
    " ",
    "",
    "\u202eevil",
    "\ufeffbom",
    "\u200b",
    "e\u0301",  # NFD of é
    "\u00e9",
    "\u212b",  # ANGSTROM SIGN (NFKC: Å)
    "\ufb01",  # ligature fi
    "👍🏽" * 50,
    "x" * 40_000,
    "y" * 300,
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%00",
    "' OR 1=1 --",
    "'; DROP TABLE datasets; --",
    '" OR ""="',
    "ds_' UNION SELECT key_hash FROM api_keys --",
    "{{7*7}}${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "9" * 5000,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    HUGE,
    1e308,
    -0.0,
    True,
    None,
    [],
    {},
    [HUGE],
    {"\ud800": "\x00"},
]


@dataclass
class Tally:
    """Every request of the campaign, what it answered and how long it took."""

    db: str
    count: Any  # () -> row counts of TABLES
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    slowest_s: float = 0.0

    def record(
        self, phase: str, what: str, send: Callable[[], httpx.Response | Any], check_state: bool
    ) -> Any:
        before = self.count() if check_state else None
        t0 = time.monotonic()
        try:
            response = send()
        except (httpx.TimeoutException, TimeoutError) as exc:
            self.cases[phase] += 1
            self.hangs.append(f"{what}: no answer in {HANG_S:.0f} s ({type(exc).__name__})")
            return None
        took = time.monotonic() - t0
        self.cases[phase] += 1
        self.slowest_s = max(self.slowest_s, took)
        status = int(response.status_code)
        self.statuses[status] += 1
        if took > HANG_S:
            self.hangs.append(f"{what}: {took:.1f} s")
        if status >= 500:
            self.server_errors.append(f"{what} -> {status}: {response.text[:300]}")
        elif status >= 400 and before is not None:
            after = self.count()
            if after != before:
                self.changed.append(f"{what} -> {status}: rows {before} -> {after}")
        return response

    def summary(self) -> str:
        total = sum(self.cases.values())
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items()))
        fives = sum(v for k, v in self.statuses.items() if k >= 500)
        return (
            f"fuzz campaign [{self.db}]: {total} cases ({parts}); responses >= 500: {fives}; "
            f"hangs over {HANG_S:.0f} s: {len(self.hangs)}; slowest {self.slowest_s:.2f} s; "
            f"rejected requests that changed state: {len(self.changed)}; "
            f"status codes {dict(sorted(self.statuses.items()))}"
        )


@pytest.fixture
def campaign(serve: Any, fake_upstream: Any, any_db_url: str) -> dict[str, Any]:
    run = serve(
        any_db_url,
        [fake_spec(fake_upstream)],
        max_predict_batch=64,
        rate_limit="",  # the campaign sends more than a tenant may per minute
        max_jobs_per_tenant=5,
    )
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "fuzz", "records": sentiment_records(6)}).json()
    created = post_head(c, ds["id"], "lp", lp_epochs=1, min_steps=0)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"

    def count() -> tuple[int, ...]:
        with run.db.session() as s:
            return tuple(int(s.scalar(select(func.count()).select_from(m)) or 0) for m in TABLES)

    db = "postgres" if any_db_url.startswith("postgres") else "sqlite"
    return {
        "run": run,
        "client": run.client(timeout=HANG_S),
        "dataset": ds["id"],
        "head": created["head"]["id"],
        "job": created["job"]["id"],
        "tally": Tally(db, count),
    }


def _cancel_new_jobs(client: httpx.Client, response: Any) -> None:
    """An accepted job (202) is cancelled at once: random hyper-parameters must not keep
    the CPU busy for the rest of the campaign."""
    if response is None or response.status_code != 202:
        return
    try:
        body = response.json()
    except ValueError:
        return
    job = body.get("job", {}).get("id") if isinstance(body.get("job"), dict) else None
    job = job or body.get("job_id")
    if isinstance(job, str):
        client.post(f"/v1/jobs/{job}/cancel")


def _stateless(ctx: dict[str, Any], schema: Any) -> None:
    run, tally, client = ctx["run"], ctx["tally"], ctx["client"]
    headers = {"Authorization": f"Bearer {run.key_a}"}
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/events"):  # a stream stays open by design
            continue

        @given(case=op.as_strategy())
        @settings(
            max_examples=STATELESS_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            for key in list(case.path_parameters or {}):
                real = ctx.get(key.removesuffix("_id"))
                if real is not None and hash(repr(case.query)) % 2 == 0:
                    case.path_parameters[key] = real
            what = f"{case.method.upper()} {case.path} {case.path_parameters or ''}"[:300]
            response = tally.record(
                "stateless",
                what,
                lambda: case.call(base_url=run.base_url, headers=headers, timeout=HANG_S),
                check_state=True,
            )
            _cancel_new_jobs(client, response)

        check()


def _stateful(ctx: dict[str, Any], schema: Any) -> None:
    run, tally, client = ctx["run"], ctx["tally"], ctx["client"]
    headers = {"Authorization": f"Bearer {run.key_a}"}
    base = schema.as_state_machine()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": run.base_url, "headers": headers, "timeout": HANG_S}

        def call(self, case: Any, **kwargs: Any) -> Any:
            what = f"{case.method.upper()} {case.path} {case.path_parameters or ''}"[:300]
            if case.path.endswith("/events"):
                # a job's event stream stays open until the job ends: ask for a job that
                # has ended (or a 404), never hold a stream open here
                case.path_parameters = dict(case.path_parameters or {}, job_id=ctx["job"])
            response = tally.record("stateful", what, lambda: case.call(**kwargs), check_state=True)
            if response is None:
                raise AssertionError(f"{what}: no answer in {HANG_S} s")
            _cancel_new_jobs(client, response)
            return response

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            return None  # the tally checks every response; links still need the bodies

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def _json(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """JSON as a hostile client sends it: ASCII escapes (a lone surrogate stays ``\\ud800``),
    NaN / Infinity tokens allowed, 400-digit integers as they are."""
    return client.request(
        method, path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def _pct(value: str) -> str:
    """Every byte percent-encoded (a lone surrogate as the bytes CESU-8 would send)."""
    return "".join(f"%{b:02X}" for b in value.encode("utf-8", "surrogatepass"))


def _corpus(ctx: dict[str, Any]) -> None:
    tally, c = ctx["tally"], ctx["client"]
    ds, head = ctx["dataset"], ctx["head"]
    recs = sentiment_records(2, ood=False)

    def dataset_bodies(v: Any) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = [("name", {"name": v, "records": recs})]
        for key in ("text", "label", "split"):
            bad = [dict(r) for r in recs]
            bad[1][key] = v
            out.append((f"records[1].{key}", {"name": "h", "records": bad}))
        out.append(("metadata", {"name": "h", "records": recs, "metadata": {"k": v}}))
        out.append(("records", {"name": "h", "records": v}))
        return out

    for i, v in enumerate(HOSTILE):
        tag = f"hostile[{i}]={v!r}"[:120]
        for where, body in dataset_bodies(v):
            r = tally.record(
                "corpus", f"POST /v1/datasets {where} {tag}",
                lambda body=body: _json(c, "POST", "/v1/datasets", body), check_state=True,
            )  # fmt: skip
            if r is not None and r.status_code == 201:  # accepted: keep the table small
                c.delete(f"/v1/datasets/{r.json()['id']}")
        head_bodies = {
            "name": {"dataset_id": ds, "backbone": "fake", "method": "lp", "name": v},
            "dataset_id": {"dataset_id": v, "backbone": "fake", "method": "lp"},
            "backbone": {"dataset_id": ds, "backbone": v, "method": "lp"},
            "method": {"dataset_id": ds, "backbone": "fake", "method": v},
            "preset": {"dataset_id": ds, "backbone": "fake", "method": "lp", "preset": v},
            "seed": {"dataset_id": ds, "backbone": "fake", "method": "lp", "seed": v},
            "overrides.epochs": {
                "dataset_id": ds, "backbone": "fake", "method": "nmtune",
                "overrides": {"epochs": v},
            },
            "overrides.key": {
                "dataset_id": ds, "backbone": "fake", "method": "lp",
                "overrides": {str(v)[:50]: 1},
            },
        }  # fmt: skip
        for where, body in head_bodies.items():
            r = tally.record(
                "corpus", f"POST /v1/heads {where} {tag}",
                lambda body=body: _json(c, "POST", "/v1/heads", body), check_state=True,
            )  # fmt: skip
            _cancel_new_jobs(c, r)
        predict_bodies = {
            "inputs[1]": {"inputs": ["fine", v]},
            "inputs": {"inputs": v},
            "top_k": {"inputs": ["fine"], "top_k": v},
        }
        for where, body in predict_bodies.items():
            tally.record(
                "corpus", f"POST predict {where} {tag}",
                lambda body=body: _json(c, "POST", f"/v1/heads/{head}/predict", body),
                check_state=True,
            )  # fmt: skip
        for path, body in (
            ("/v1/embeddings", {"model": v, "input": ["x"]}),
            ("/v1/embeddings", {"model": "fake", "input": [v]}),
            ("/v1/classify", {"model": head, "input": [v]}),
            (f"/v1/datasets/{ds}/audit", {"backbone": "fake", "splits": [v]}),
        ):
            r = tally.record(
                "corpus", f"POST {path} {tag}",
                lambda path=path, body=body: _json(c, "POST", path, body), check_state=True,
            )  # fmt: skip
            _cancel_new_jobs(c, r)
        if isinstance(v, str) and v:
            quoted = _pct(v[:2000])
            for path in (
                f"/v1/datasets/{quoted}",
                f"/v1/heads/{quoted}",
                f"/v1/jobs/{quoted}",
                f"/v1/heads/{quoted}/spectrum",
            ):
                tally.record(
                    "corpus", f"GET {path[:60]} {tag}",
                    lambda path=path: c.get(path), check_state=True,
                )  # fmt: skip
            for path, params in (
                ("/v1/datasets", {"cursor": v}),
                ("/v1/datasets", {"limit": v}),
                ("/v1/jobs", {"status": v, "kind": v}),
                ("/v1/heads", {"dataset": v}),
                (f"/v1/datasets/{ds}/spectrum", {"split": v, "backbone": "fake"}),
                (f"/v1/datasets/{ds}/spectrum", {"split": "train", "backbone": v}),
                (f"/v1/heads/{head}/spectrum", {"split": v}),
            ):
                url = path + "?" + "&".join(f"{k}={_pct(p[:2000])}" for k, p in params.items())
                tally.record(
                    "corpus", f"GET {path} {list(params)} {tag}"[:300],
                    lambda url=url: c.get(url), check_state=True,
                )  # fmt: skip
    # bodies that are not even JSON / UTF-8, and uploads
    raw_bodies = [
        b'{"name": "\xff\xfe", "records": []}',
        b'{"name": "x", "records": [{"text": "a", "label": NaN}]}',
        b'{"name": "x", "records": [{"text": "a", "label": 1e999}]}',
        b"\x00" * 64,
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ]
    for i, body in enumerate(raw_bodies):
        tally.record(
            "corpus", f"POST /v1/datasets raw[{i}]",
            lambda body=body: c.post(
                "/v1/datasets", content=body, headers={"content-type": "application/json"}
            ),
            check_state=True,
        )  # fmt: skip
    uploads = [
        ("d.csv", b"text,label\n" + b"a\x00b,pos\nc,neg\n" * 4),
        ("d.csv", b"text,label\n" + b"\xff\xfe,pos\n" * 8),
        ("d.csv", b"text,label\n" + b"t,9" + b"9" * 5000 + b"\n"),
        ("d.jsonl", b'{"text": "\\ud800", "label": "p"}\n' * 8),
        ("../../etc/passwd", b"text,label\na,b\n"),
        ("d.jsonl", b'{"text": "a"' * 1000),
    ]
    for i, (name, content) in enumerate(uploads):
        tally.record(
            "corpus", f"POST /v1/datasets/upload upload[{i}] {name}",
            lambda name=name, content=content: c.post(
                "/v1/datasets/upload", data={"name": "u"}, files={"file": (name, content)}
            ),
            check_state=True,
        )  # fmt: skip


@pytest.mark.slow
def test_fuzz_campaign(campaign: dict[str, Any]) -> None:
    run, tally = campaign["run"], campaign["tally"]
    schema = schemathesis.openapi.from_url(f"{run.base_url}/openapi.json")
    t0 = time.monotonic()
    _stateless(campaign, schema)
    _stateful(campaign, schema)
    _corpus(campaign)
    summary = f"{tally.summary()}; {time.monotonic() - t0:.0f} s"
    print(f"\n{summary}")
    assert tally.cases["stateless"] >= 100 and tally.cases["corpus"] >= 500
    assert tally.cases["stateful"] >= STATEFUL_SCENARIOS
    assert not tally.server_errors, "\n".join([summary, *tally.server_errors[:30]])
    assert not tally.hangs, "\n".join([summary, *tally.hangs[:30]])
    assert not tally.changed, "\n".join([summary, *tally.changed[:30]])
