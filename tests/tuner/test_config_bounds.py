"""Every numeric override has an upper bound (issue 12: no tenant trains for days)."""

from __future__ import annotations

from typing import Any

import pytest

from nmtune.tuner import ConfigError
from nmtune.tuner.config import MAX_AUTO_CANDIDATES, resolve_config

HUGE = {
    "w_mse": 1e9,
    "w_cov": 1e9,
    "w_svd": 1e9,
    "svd_top_k": 10**9,
    "hidden_ratio": 1e6,
    "num_layers": 100_000,
    "residual_init": 1e9,
    "lr": 1e300,
    "weight_decay": 1e9,
    "lp_lr": 1e300,
    "lp_weight_decay": 1e9,
    "epochs": 10_000_000,
    "lp_epochs": 10_000_000,
    "batch_size": 10**9,
    "min_steps": 10**12,
    "feature_noise": 1e9,
    "lr_c": 1e300,
    "lr_cs": 10**6,
    "lr_max_iter": 10**9,
    "lr_cv_repeats": 10**6,
    "min_holdout": 10**12,
    "cv_folds": 100_000,
    "patience": 10**6,
    "auto_cv_folds": 100_000,
    "auto_cv_repeats": 100_000,
    "auto_cv_max_rows": 10**12,
    "auto_time_budget_s": 1e12,
    "auto_min_per_class": 10**12,
    "gce_q": 1e9,
    "sce_alpha": 1e9,
    "sce_beta": 1e9,
}


@pytest.mark.parametrize(("name", "value"), sorted(HUGE.items()))
def test_huge_override_is_rejected_naming_the_field(name: str, value: Any) -> None:
    method = "auto" if name.startswith("auto_") else "nmtune"
    with pytest.raises(ConfigError) as err:
        resolve_config(method, "paper-code", {name: value})
    assert err.value.field == name
    assert name in str(err.value)


def test_every_numeric_field_is_covered() -> None:
    from dataclasses import fields

    from nmtune.tuner.config import HeadConfig

    numeric = {
        f.name
        for f in fields(HeadConfig)
        if f.type in ("int", "float", "float | None")
        and f.name not in ("seed", "val_fraction", "feature_dropout")
    }
    assert numeric <= set(HUGE), sorted(numeric - set(HUGE))


def test_too_many_auto_candidates() -> None:
    cands = [{"method": "lr"}] * (MAX_AUTO_CANDIDATES + 1)
    with pytest.raises(ConfigError) as err:
        resolve_config("auto", "paper-code", {"auto_candidates": cands})
    assert err.value.field == "auto_candidates"


def test_defaults_and_ranges_ends_still_resolve() -> None:
    cfg = resolve_config("nmtune", "paper-code", {"epochs": 10_000, "hidden_ratio": 16.0})
    assert cfg.epochs == 10_000 and cfg.hidden_ratio == 16.0
