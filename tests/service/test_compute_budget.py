"""The cross-field compute budget of a head (issue 12): each override is in its range, but
their product (epochs x rows x width) is bounded by ``max_train_work``; the 422 names the
overrides. A job without overrides always passes (the dataset size has its own limit)."""

from __future__ import annotations

from typing import Any

import pytest

from nmtune.service.heads.models import Head
from nmtune.service.jobs.models import Job
from nmtune.tuner import resolve_config
from nmtune.tuner.budget import training_work
from tests.service.conftest import fake_spec, sentiment_records


def test_training_work_grows_with_each_factor() -> None:
    base = training_work(resolve_config("nmtune", overrides={"min_steps": 0}), 1000, 64, 2)
    twice = 2 * resolve_config("nmtune").epochs
    more_epochs = training_work(
        resolve_config("nmtune", overrides={"min_steps": 0, "epochs": twice}), 1000, 64, 2
    )
    assert more_epochs.total == pytest.approx(2 * base.total)
    assert training_work(
        resolve_config("nmtune", overrides={"min_steps": 0}), 2000, 64, 2
    ).total == pytest.approx(2 * base.total)
    wider = training_work(
        resolve_config("nmtune", overrides={"min_steps": 0, "hidden_ratio": 8.0}), 1000, 64, 2
    )
    assert wider.total > 1.9 * base.total
    lr = training_work(resolve_config("lr"), 1000, 64, 2)
    fixed_c = training_work(resolve_config("lr", overrides={"lr_c": 1.0}), 1000, 64, 2)
    assert lr.total == pytest.approx(16 * fixed_c.total)  # 5 folds x 3 repeats + the refit
    auto = training_work(resolve_config("auto"), 1000, 64, 2)
    assert auto.total > base.total and "candidates" in auto.explanation


def test_auto_work_uses_each_candidates_preset_and_the_users_overrides() -> None:
    # on 64 rows the step floor decides: robust's 100 steps, paper-code's 300
    auto = training_work(resolve_config("auto"), 64, 64, 2)
    assert "min_steps 100" in auto.explanation and "min_steps 300" in auto.explanation
    # a user's min_steps is shared by every candidate, whatever its preset
    own = training_work(resolve_config("auto", overrides={"min_steps": 10}), 64, 64, 2)
    assert "min_steps 100" not in own.explanation and "min_steps 300" not in own.explanation
    assert own.total < auto.total


@pytest.fixture
def small_budget(serve: Any, fake_upstream: Any) -> Any:
    run = serve(None, [fake_spec(fake_upstream)], max_train_work=1e6)
    c = run.client()
    ds = c.post("/v1/datasets", json={"name": "b", "records": sentiment_records(6)}).json()
    return run, c, ds["id"]


def _rows(run: Any) -> tuple[int, int]:
    with run.db.session() as s:
        return s.query(Head).count(), s.query(Job).count()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"epochs": 10_000}, ["overrides.epochs"]),
        (
            {"hidden_ratio": 16.0, "num_layers": 16},
            ["overrides.hidden_ratio", "overrides.num_layers"],
        ),
        ({"min_steps": 10**6, "batch_size": 4096}, ["overrides.min_steps", "overrides.batch_size"]),
    ],
)
def test_overrides_over_the_budget_are_422_naming_them(
    small_budget: Any, overrides: dict[str, Any], named: list[str]
) -> None:
    run, c, ds = small_budget
    before = _rows(run)
    body = {"dataset_id": ds, "backbone": "fake", "method": "nmtune", "overrides": overrides}
    r = c.post("/v1/heads", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["error"] == "ValidationError" and err["field"] == named[0]
    for name in named:
        assert name in err["detail"]
    assert "max_train_work" in err["detail"] and "multiply-adds" in err["detail"]
    assert _rows(run) == before  # nothing stored


def test_defaults_and_cheaper_overrides_pass_the_budget(small_budget: Any) -> None:
    _, c, ds = small_budget
    # 10 training rows of 16-d fake vectors: the defaults alone are over the budget
    assert training_work(resolve_config("nmtune"), 10, 16, 2).total > 1e6
    # the defaults (robust: 10 epochs, a floor of 100 steps, hidden_ratio 4) cost more than
    # the budget of 1e6 on this data, but a job without overrides, or with overrides that
    # cost no more (on 12 rows the step floor decides, so 30 epochs cost the same), is never
    # refused
    for overrides in ({}, {"epochs": 30}, {"epochs": 5, "hidden_ratio": 1.0}):
        body = {"dataset_id": ds, "backbone": "fake", "method": "nmtune", "overrides": overrides}
        r = c.post("/v1/heads", json=body)
        assert r.status_code == 202, r.text
        assert c.post(f"/v1/jobs/{r.json()['job']['id']}/cancel").status_code in (200, 202)


def test_deployment_default_auto_time_budget(serve: Any, fake_upstream: Any) -> None:
    """NMTUNE_AUTO_TIME_BUDGET_S sets auto's time budget where a head's overrides do not: a
    candidate projected past it is listed as over_budget in the head's record (over REST)."""
    from tests.service.conftest import post_head, wait_job

    run = serve(None, [fake_spec(fake_upstream)], auto_time_budget_s=0.5)
    c = run.client()
    r = c.post("/v1/datasets", json={"name": "s", "records": sentiment_records(24, ood=False)})
    assert r.status_code == 201
    slow = {"method": "nmtune", "preset": "paper-code", "min_steps": 20000}
    grid = [{"method": "lr"}, slow]
    created = post_head(
        c, r.json()["id"], "auto", auto_candidates=grid, auto_min_per_class=0, auto_cv_repeats=1
    )
    assert wait_job(c, created["job"]["id"])["status"] == "succeeded"
    head = c.get(f"/v1/heads/{created['head']['id']}").json()
    cfg = head["config"]
    lr_rec, slow_rec = cfg["candidates"]
    assert lr_rec["selected"] and not slow_rec["selected"]
    assert "auto_time_budget_s=0.5 s" in slow_rec["over_budget"]
    assert cfg["auto_time_budget_s"] == 0.5  # the record says what bound it
