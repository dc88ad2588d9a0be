"""Over-long texts: rejected by default, or truncated and recorded with ``long_texts``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from nmtune.service.datasets.models import Example
from tests.service.conftest import sentiment_records


@pytest.fixture
def run(serve: Any, any_db_url: str) -> Any:
    return serve(any_db_url, [], max_text_chars=50)


def records() -> list[dict[str, Any]]:
    recs = sentiment_records(4, ood=False)
    recs[1]["text"] = "a" * 80
    recs[5]["text"] = "é" * 51  # code points, not bytes
    return recs


def test_default_rejects_the_first_long_text_and_stores_nothing(run: Any) -> None:
    with run.client() as c:
        r = c.post("/v1/datasets", json={"name": "long", "records": records()})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "records[1].text"
        assert c.get("/v1/datasets").json()["total"] == 0


def test_truncate_cuts_to_the_limit_and_records_what_was_cut(run: Any) -> None:
    recs = records()
    with run.client() as c:
        r = c.post("/v1/datasets", json={"name": "long", "records": recs, "long_texts": "truncate"})
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["truncation"] == {
            "max_chars": 50,
            "count": 2,
            "records": [
                {"position": 1, "original_chars": 80},
                {"position": 5, "original_chars": 51},
            ],
        }
        assert c.get(f"/v1/datasets/{out['id']}").json()["truncation"] == out["truncation"]
        # a dataset with nothing to cut says so
        short = c.post(
            "/v1/datasets",
            json={"name": "short", "records": sentiment_records(4, ood=False),
                  "long_texts": "truncate"},
        )  # fmt: skip
        assert short.status_code == 201 and short.json()["truncation"] is None
    with run.db.session() as s:
        texts = s.scalars(
            select(Example.text).where(Example.dataset_id == out["id"]).order_by(Example.position)
        ).all()
    assert texts[1] == "a" * 50 and texts[5] == "é" * 50
    assert [t for i, t in enumerate(texts) if i not in (1, 5)] == [
        r["text"] for i, r in enumerate(recs) if i not in (1, 5)
    ]


def test_upload_takes_long_texts_and_rejects_an_unknown_policy(run: Any) -> None:
    lines = "\n".join(json.dumps(r) for r in records()).encode()
    with run.client() as c:
        r = c.post(
            "/v1/datasets/upload",
            files={"file": ("d.jsonl", lines)},
            data={"name": "f", "long_texts": "truncate"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["truncation"]["count"] == 2
        bad = c.post(
            "/v1/datasets",
            json={"name": "x", "records": records(), "long_texts": "shorten"},
        )
        assert bad.status_code == 422 and bad.json()["field"].endswith("long_texts")
        assert c.get("/v1/datasets").json()["total"] == 1
