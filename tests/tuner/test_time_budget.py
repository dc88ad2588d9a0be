"""auto's time budget: a training run given a deadline stops as soon as it is projected to
end past it, and auto lists such a candidate as over_budget instead of waiting for it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import torch

from nmtune.service.heads.records import Candidate
from nmtune.tuner import NMTuneClassifier, resolve_config
from nmtune.tuner.errors import OverBudget
from nmtune.tuner.training import train_head

#: a candidate whose schedule is long on any machine: 4x wide, trained from scratch, and at
#: least 20,000 optimiser steps (seconds even on a fast CPU)
SLOW = {"method": "nmtune", "preset": "paper-code", "min_steps": 20000}


def blobs(n: int, seed: int = 0, c: int = 3, d: int = 16) -> tuple[Any, Any]:
    centers = np.random.default_rng(7).normal(size=(c, d)) * 2.0
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def test_a_run_projected_past_its_deadline_stops_early() -> None:
    x, y = blobs(120)
    cfg = resolve_config("nmtune", "paper-code", {"min_steps": 20000, "device": "cpu"})
    started = time.perf_counter()
    with pytest.raises(OverBudget) as info:
        train_head(cfg, x, y, 3, deadline=started + 0.2)
    exc = info.value
    assert 0 <= exc.steps < exc.total_steps and exc.total_steps >= 20000
    assert exc.steps < exc.total_steps // 4  # stopped early, on the projection or the deadline
    if exc.steps >= 2:
        assert exc.projected_s > 0.2
    assert "optimiser steps" in str(exc) and "nmtune" in str(exc)
    # a deadline already past stops before the first step
    with pytest.raises(OverBudget) as past:
        train_head(cfg, x, y, 3, deadline=time.perf_counter() - 1.0)
    assert past.value.steps == 0


def test_a_deadline_that_is_not_reached_changes_nothing() -> None:
    x, y = blobs(200)
    cfg = resolve_config("nmtune", "robust", {"device": "cpu", "epochs": 3})
    init = (torch.zeros(3, 16), torch.zeros(3))
    plain = train_head(cfg, x, y, 3, x_val=x[:40], y_val=y[:40], init=init)
    bounded = train_head(
        cfg, x, y, 3, x_val=x[:40], y_val=y[:40], init=init, deadline=time.perf_counter() + 3600
    )
    assert plain.best_epoch == bounded.best_epoch
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, bounded.model.state_dict()[k]), k


@pytest.mark.parametrize("signal", ["cv", "holdout"])
def test_auto_lists_a_candidate_over_its_budget_and_picks_among_the_rest(signal: str) -> None:
    x, y = blobs(240)
    xv, yv = blobs(300, seed=1)
    kw: dict[str, Any] = {"auto_cv_repeats": 1, "auto_time_budget_s": 0.5}
    kw["auto_signal"] = signal  # holdout: the validation rows select
    grid = [{"method": "lr"}, SLOW]
    clf = NMTuneClassifier(
        method="auto", device="cpu", random_state=0, auto_candidates=grid, **kw
    ).fit(x, y, xv, yv)
    assert clf.selection_["signal"] == signal
    lr_rec, slow = clf.candidates_
    assert lr_rec["selected"] and clf.method_ == "lr" and not slow["selected"]
    note = slow["over_budget"]
    assert "auto_time_budget_s=0.5 s" in note and "not eligible" in note
    assert ("in CV fold 1" in note) == (signal == "cv")
    assert slow["val_accuracy"] is None
    assert clf.score(x, y) > 0.8
    Candidate.model_validate(slow)  # the service's record keeps the reason
    # no budget (0): the candidate runs to the end (a short schedule here)
    quick = {**SLOW, "min_steps": 30, "epochs": 2}
    free = NMTuneClassifier(
        method="auto",
        device="cpu",
        random_state=0,
        auto_candidates=[{"method": "lr"}, quick],
        **{**kw, "auto_time_budget_s": 0, "auto_race": False},
    ).fit(x, y, xv, yv)
    assert all("over_budget" not in c for c in free.candidates_)
    assert free.candidates_[1]["val_accuracy"] is not None


def test_each_cv_fold_gets_its_share_of_the_time_left() -> None:
    """A candidate's fold must end within its share of what is left, so one whose three folds
    cannot all end in time stops in its first fold instead of after two of them."""
    from nmtune.tuner.auto import _fold_share

    assert _fold_share(None, 0, 3) is None
    now = time.perf_counter()
    first = _fold_share(now + 90.0, 0, 3)
    last = _fold_share(now + 90.0, 2, 3)
    assert first is not None and last is not None
    assert 29.0 < first - now < 31.5 and 89.0 < last - now < 90.5
    late = _fold_share(now - 5.0, 1, 3)  # already past: the fold has no time at all
    assert late is not None and late - now < 1.0


def test_the_note_of_a_candidate_that_never_started_says_so() -> None:
    from nmtune.tuner.auto import _over_budget_note

    never = OverBudget("x", 0.0, 0, 900)
    assert _over_budget_note(never, 60.0, (1, 3)).startswith("not started in CV fold 2 of 3")
    ran = _over_budget_note(OverBudget("x", 512.0, 7, 900), 60.0)
    assert ran.startswith("stopped after 7 of 900") and "would take 512 s" in ran
