"""Schemathesis over the service's own OpenAPI spec, over real HTTP: no 5xx, and every
response (errors included) matches the schema. Bounded in examples and time."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import fake_spec, post_head, sentiment_records, wait_job

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture
def live(serve: Any, fake_upstream: Any) -> dict[str, Any]:
    run = serve(None, [fake_spec(fake_upstream)], max_predict_batch=64)
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "fuzz", "records": sentiment_records(6)}).json()
    created = post_head(c, ds["id"], "lp", lp_epochs=1)
    wait_job(c, created["job"]["id"])
    return {"run": run, "dataset": ds["id"], "head": created["head"]["id"]}


MAX_EXAMPLES = 20


@pytest.mark.slow
def test_api_conforms(live: dict[str, Any]) -> None:
    run = live["run"]
    schema = schemathesis.openapi.from_url(f"{run.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {run.key_a}"}
    failures: list[str] = []
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        n_ops += 1

        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            # point generated ids at real objects half of the time to reach deep paths
            for key in list(case.path_parameters or {}):
                if key in ("dataset_id", "head_id") and hash(repr(case.query)) % 2 == 0:
                    case.path_parameters[key] = live[key.removesuffix("_id")]
            case.call_and_validate(
                base_url=run.base_url, headers=headers, checks=CHECKS, timeout=60
            )

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{op.method.upper()} {op.path}: {exc}"[:2000])
    assert n_ops >= 15
    assert not failures, "\n\n".join(failures)
