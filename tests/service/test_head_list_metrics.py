"""Per-class metrics grow with the classes, the confusion matrix with their square (issue
12: 3,000 classes made a 40.6 MB list response): GET /v1/heads lists leave them out of splits
with more labels than ``list_per_class_max``; GET /v1/heads/{id} keeps them."""

from __future__ import annotations

from typing import Any

from nmtune.types import SplitMetrics, metrics_from_json
from tests.service.conftest import fake_spec, post_head, wait_job


def _records(labels: list[str]) -> list[dict[str, Any]]:
    return [
        {"text": f"{label} example {i}", "label": label, "split": "test" if i % 3 == 2 else "train"}
        for label in labels
        for i in range(6)
    ]


def test_list_summarises_per_class_metrics_of_heads_with_many_classes(
    serve: Any, fake_upstream: Any
) -> None:
    run = serve(None, [fake_spec(fake_upstream)], list_per_class_max=2)
    c = run.client()
    heads = {}
    for name, labels in (("two", ["a", "b"]), ("three", ["a", "b", "c"])):
        ds = c.post("/v1/datasets", json={"name": name, "records": _records(labels)}).json()
        created = post_head(c, ds["id"], "lp", lp_epochs=1, min_steps=0)
        assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
        heads[name] = created["head"]["id"]
    r = c.get("/v1/heads")
    assert r.status_code == 200, r.text
    listed = {h["id"]: h for h in r.json()["items"]}
    big = listed[heads["three"]]["metrics"]["test"]
    assert big["per_class"] == {} and big["confusion_matrix"] == []
    assert big["per_class_omitted"] is True
    assert big["labels"] == ["a", "b", "c"] and 0 <= big["accuracy"] <= 1  # the summary stays
    small = listed[heads["two"]]["metrics"]["test"]
    assert small["per_class_omitted"] is False and len(small["confusion_matrix"]) == 2
    full = c.get(f"/v1/heads/{heads['three']}").json()["metrics"]["test"]
    assert full["per_class_omitted"] is False
    assert set(full["per_class"]) == {"a", "b", "c"} and len(full["confusion_matrix"]) == 3
    assert {k: v for k, v in big.items() if k not in ("per_class", "confusion_matrix")} == {
        k: v for k, v in full.items() if k not in ("per_class", "confusion_matrix")
    } | {"per_class_omitted": True}
    # the client reads the summarised form
    parsed = metrics_from_json(listed[heads["three"]]["metrics"])
    assert parsed is not None and isinstance(parsed["test"], SplitMetrics)


def test_a_head_pages_per_class_metrics_of_splits_with_many_labels(
    serve: Any, fake_upstream: Any
) -> None:
    run = serve(None, [fake_spec(fake_upstream)], head_per_class_max=2)
    c = run.client()
    labels = ["a", "b", "c", "d", "e"]
    ds = c.post("/v1/datasets", json={"name": "five", "records": _records(labels)}).json()
    created = post_head(c, ds["id"], "lp", lp_epochs=1, min_steps=0)
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    hid = created["head"]["id"]
    test = c.get(f"/v1/heads/{hid}").json()["metrics"]["test"]
    assert test["per_class_omitted"] is True and test["confusion_matrix"] == []
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = c.get(f"/v1/heads/{hid}/metrics/test", params={"limit": 2, "offset": offset})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["labels"] == labels and page["total"] == 5
        rows += page["items"]
        if not page["has_more"]:
            break
        offset += 2
    assert [row["label"] for row in rows] == labels
    assert all(len(row["confusion"]) == 5 for row in rows)
    assert sum(row["support"] for row in rows) == test["n_samples"]
    assert sum(sum(row["confusion"]) for row in rows) == test["n_samples"]
    r = c.get(f"/v1/heads/{hid}/metrics/nope")
    assert r.status_code == 404 and r.json()["field"] == "split"
    assert run.client("b").get(f"/v1/heads/{hid}/metrics/test").status_code == 404  # tenant
