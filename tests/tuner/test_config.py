"""Presets, overrides, validation and deviations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tuner import METHODS, PRESETS, ConfigError, HeadConfig, resolve_config


def test_presets() -> None:
    c = resolve_config("nmtune")
    assert c.preset == "paper-code"
    assert (c.w_mse, c.w_cov, c.w_svd) == (1.0, 0.04, 0.001)
    assert (c.lr, c.weight_decay, c.epochs, c.batch_size, c.schedule) == (
        1e-3,
        1e-4,
        30,
        64,
        "cosine",
    )
    assert (c.lp_lr, c.lp_weight_decay, c.svd_top_k, c.hidden_ratio) == (1e-2, 1e-4, 5, 4.0)
    assert (c.residual_init, c.feature_dropout, c.feature_noise) == (1.0, 0.0, 0.0)
    assert c.init_classifier_from_lp is False and c.class_weight is None
    t = resolve_config("nmtune", "paper-text")
    assert (t.w_mse, t.w_cov, t.w_svd) == (0.01, 0.01, 0.01)
    m = resolve_config("mlp")
    assert (m.w_mse, m.w_cov, m.w_svd) == (0.0, 0.0, 0.0)
    assert set(PRESETS) == {"paper-code", "paper-text", "robust"}
    r = resolve_config("nmtune", "robust")
    assert (r.residual_init, r.feature_dropout) == (0.0, 0.5)
    assert (r.w_mse, r.w_cov, r.w_svd) == (1.0, 0.04, 0.001)
    assert METHODS == ("lp", "mlp", "nmtune", "auto")
    assert resolve_config("lp").head_lr == 1e-2


def test_unknown_field_named_and_valid_listed() -> None:
    with pytest.raises(ConfigError) as e:
        resolve_config("nmtune", "paper-code", {"learning_rate": 0.1})
    assert "learning_rate" in str(e.value) and "weight_decay" in str(e.value)


@pytest.mark.parametrize(
    "override",
    [
        {"epochs": "3"},
        {"epochs": 0},
        {"epochs": 2.5},
        {"lr": -1.0},
        {"lr": True},
        {"residual": "yes"},
        {"norm": "groupnorm"},
        {"feature_dropout": 1.0},
        {"val_fraction": 0.0},
        {"batch_size": 1},
        {"class_weight": "auto"},
        {"w_mse": float("nan")},
        {"auto_candidates": [{"method": "svm"}]},
        {"device": "tpu"},
    ],
)
def test_invalid_values_rejected(override: dict[str, object]) -> None:
    method = "auto" if "auto_candidates" in override else "nmtune"
    with pytest.raises(ConfigError):
        resolve_config(method, "paper-code", override)


def test_bad_method_preset_and_mlp_regulariser() -> None:
    with pytest.raises(ConfigError):
        resolve_config("svm")
    with pytest.raises(ConfigError):
        resolve_config("nmtune", "paper")
    with pytest.raises(ConfigError):
        resolve_config("mlp", "paper-code", {"w_mse": 1.0})


def test_deviations_and_roundtrip() -> None:
    c = resolve_config("nmtune", "paper-code", {"residual_init": 0.0, "epochs": 30, "seed": 3})
    assert any("single view" in d for d in c.deviations)
    assert any(d.startswith("residual_init=0.0") for d in c.deviations)
    assert not any(d.startswith("epochs") for d in c.deviations)  # equal to the preset
    d = c.to_dict()
    json.dumps(d)
    assert HeadConfig.from_dict(json.loads(json.dumps(d))) == c
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0  # type: ignore[misc]
    d["lr"] = 0.5  # edited blob: no longer matches preset + overrides
    with pytest.raises(ConfigError):
        HeadConfig.from_dict(d)


def test_auto_candidates_override() -> None:
    c = resolve_config(
        "auto",
        "paper-code",
        {"auto_candidates": [{"method": "lp"}, {"method": "nmtune", "residual_init": 0.0}]},
    )
    assert c.candidate_overrides() == [{"method": "lp"}, {"method": "nmtune", "residual_init": 0.0}]
    json.dumps(c.to_dict())


def test_auto_rule_field() -> None:
    assert resolve_config("auto").auto_rule == "one-se"
    assert resolve_config("auto", overrides={"auto_rule": "best"}).auto_rule == "best"
    with pytest.raises(ConfigError):
        resolve_config("auto", overrides={"auto_rule": "worst"})
    with pytest.raises(ConfigError):
        resolve_config("nmtune", overrides={"auto_rule": "best"})
    with pytest.raises(ConfigError):
        resolve_config(
            "auto", overrides={"auto_candidates": [{"method": "lp", "auto_rule": "best"}]}
        )


def test_auto_cv_rule_and_folds() -> None:
    cfg = resolve_config("auto")
    assert cfg.auto_rule == "one-se" and cfg.auto_cv_folds == 3  # cv is opt-in
    cv = resolve_config("auto", overrides={"auto_rule": "cv", "auto_cv_folds": 5})
    assert cv.auto_rule == "cv" and cv.auto_cv_folds == 5
    assert cv.deviations == cfg.deviations  # a run setting, not part of the recipe
    for method in ("lp", "mlp", "nmtune"):
        with pytest.raises(ConfigError, match="only valid with method 'auto'"):
            resolve_config(method, overrides={"auto_rule": "cv"})
        with pytest.raises(ConfigError, match="only valid with method 'auto'"):
            resolve_config(method, overrides={"auto_cv_folds": 3})
    for bad in (1, 0, -2, 2.5, "3", True, None):
        with pytest.raises(ConfigError, match="auto_cv_folds"):
            resolve_config("auto", overrides={"auto_cv_folds": bad})
    with pytest.raises(ConfigError, match="may not set"):
        resolve_config(
            "auto", overrides={"auto_candidates": [{"method": "lp", "auto_cv_folds": 4}]}
        )
    again = HeadConfig.from_dict(cv.to_dict())
    assert again == cv
