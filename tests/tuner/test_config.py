"""Presets, overrides, validation and deviations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nmtune.tuner import DEFAULT_PRESET, METHODS, PRESETS, ConfigError, HeadConfig, resolve_config
from nmtune.tuner.config import ROBUST_OVERRIDES


def test_presets() -> None:
    assert DEFAULT_PRESET == "robust"
    assert resolve_config("nmtune").preset == "robust"
    c = resolve_config("nmtune", "paper-code")
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
    assert c.init_from_lr is False and c.min_steps == 300
    assert (c.lr_c, c.lr_cs, c.lr_max_iter) == (None, 10, 100)
    assert (c.val_fraction, c.min_holdout, c.cv_folds) == (0.1, 200, 5)
    t = resolve_config("nmtune", "paper-text")
    assert (t.w_mse, t.w_cov, t.w_svd) == (0.01, 0.01, 0.01)
    m = resolve_config("mlp", "paper-code")
    assert (m.w_mse, m.w_cov, m.w_svd) == (0.0, 0.0, 0.0)
    assert set(PRESETS) == {"paper-code", "paper-text", "robust"}
    r = resolve_config("nmtune", "robust")
    assert (r.residual_init, r.feature_dropout, r.init_from_lr) == (0.0, 0.5, True)
    assert (r.w_mse, r.w_cov, r.w_svd) == (1.0, 0.04, 0.001)
    # robust = paper-code + exactly ROBUST_OVERRIDES; paper-code = the HeadConfig defaults
    assert PRESETS["robust"] == {**PRESETS["paper-code"], **ROBUST_OVERRIDES}
    assert set(ROBUST_OVERRIDES) == {
        "init_from_lr",
        "residual_init",
        "feature_dropout",
        "min_steps",
        "epochs",
    }
    assert (r.min_steps, resolve_config("mlp", "robust").min_steps) == (100, 100)
    assert (r.epochs, resolve_config("nmtune", "paper-code").epochs) == (10, 30)
    assert resolve_config("nmtune", "paper-code").min_steps == 300  # from scratch: the floor
    # a user's min_steps wins over the preset's and is recorded as a deviation from it
    own = resolve_config("nmtune", "robust", {"min_steps": 40})
    assert own.min_steps == 40 and "min_steps=40 (preset 'robust': 100)" in own.deviations
    defaults = HeadConfig()
    assert all(getattr(defaults, k) == v for k, v in PRESETS["paper-code"].items())
    assert METHODS == ("lr", "lp", "mlp", "nmtune", "auto")
    assert resolve_config("lp").head_lr == 1e-2
    lr = resolve_config("lr")
    assert (lr.w_mse, lr.w_cov, lr.w_svd) == (0.0, 0.0, 0.0)


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
        {"val_fraction": 1.0},
        {"val_fraction": -0.1},
        {"min_steps": -1},
        {"lr_c": 0.0},
        {"lr_cs": 0},
        {"cv_folds": 1},
        {"init_from_lr": 1},
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
    # A stored value is the record of how the head was trained, even where today's preset
    # or default says otherwise (a head trained before an upgrade that changed one).
    old = {**d, "epochs": 20, "auto_time_budget_s": 60.0, "not_a_field_any_more": 1}
    again = HeadConfig.from_dict(old)
    assert (again.epochs, again.auto_time_budget_s, again.seed) == (20, 60.0, 3)
    assert again.deviations == c.deviations and again.overrides == c.overrides
    lacking = {k: v for k, v in d.items() if k != "zero_init_branch"}  # a field added since
    assert HeadConfig.from_dict(lacking).zero_init_branch is False
    # each stored value is still checked by its field's rule
    for name, bad in (("lr", -1.0), ("epochs", "many"), ("norm", "groupnorm"), ("seed", -3)):
        with pytest.raises(ConfigError) as info:
            HeadConfig.from_dict({**d, name: bad})
        assert info.value.field == name
    with pytest.raises(ConfigError):
        HeadConfig.from_dict({**d, "deviations": "none"})


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
    assert cfg.auto_rule == "one-se" and cfg.auto_cv_folds == 3
    assert (cfg.auto_signal, cfg.auto_cv_repeats, cfg.auto_cv_max_rows) == ("auto", 2, 4000)
    assert cfg.auto_time_budget_s == 300.0
    cv = resolve_config("auto", overrides={"auto_rule": "cv", "auto_cv_folds": 5})
    assert cv.auto_rule == "cv" and cv.auto_cv_folds == 5
    assert cv.deviations == cfg.deviations  # a run setting, not part of the recipe
    for method in ("lr", "lp", "mlp", "nmtune"):
        for name, value in (
            ("auto_rule", "cv"),
            ("auto_cv_folds", 3),
            ("auto_signal", "cv"),
            ("auto_cv_repeats", 1),
            ("auto_cv_max_rows", 10),
            ("auto_time_budget_s", 1.0),
        ):
            with pytest.raises(ConfigError, match="only valid with method 'auto'") as e:
                resolve_config(method, overrides={name: value})
            assert e.value.field == name
    for bad in (1, 0, -2, 2.5, "3", True, None):
        with pytest.raises(ConfigError, match="auto_cv_folds"):
            resolve_config("auto", overrides={"auto_cv_folds": bad})
    with pytest.raises(ConfigError, match="may not set"):
        resolve_config(
            "auto", overrides={"auto_candidates": [{"method": "lp", "auto_cv_folds": 4}]}
        )
    again = HeadConfig.from_dict(cv.to_dict())
    assert again == cv


def test_auto_signal_fields() -> None:
    c = resolve_config(
        "auto",
        overrides={
            "auto_signal": "holdout",
            "auto_cv_repeats": 3,
            "auto_cv_max_rows": 0,
            "auto_time_budget_s": 0,
        },
    )
    assert (c.auto_signal, c.auto_cv_repeats, c.auto_cv_max_rows) == ("holdout", 3, 0)
    assert c.auto_time_budget_s == 0.0
    for name, bad in (
        ("auto_signal", "target"),
        ("auto_cv_repeats", 0),
        ("auto_cv_max_rows", -1),
        ("auto_time_budget_s", -1.0),
    ):
        with pytest.raises(ConfigError) as e:
            resolve_config("auto", overrides={name: bad})
        assert e.value.field == name


def test_default_auto_grid_and_candidate_presets() -> None:
    c = resolve_config("auto")
    assert c.candidate_overrides() == [
        {"method": "lr"},
        {"method": "nmtune", "hidden_ratio": 1.0, "preset": "robust"},
        {"method": "nmtune", "min_per_class": 256, "preset": "paper-code"},
    ]
    c2 = resolve_config(
        "auto", overrides={"auto_candidates": [{"method": "mlp", "preset": "paper-text"}]}
    )
    assert c2.candidate_overrides() == [{"method": "mlp", "preset": "paper-text"}]
    with pytest.raises(ConfigError) as e:
        resolve_config("auto", overrides={"auto_candidates": [{"method": "lp", "preset": "x"}]})
    assert e.value.field == "auto_candidates[0]"
    with pytest.raises(ConfigError) as e:
        resolve_config("auto", overrides={"auto_candidates": [{"method": "lr", "w_mse": 1.0}]})
    assert e.value.field == "auto_candidates[0]"


def test_val_fraction_zero_and_lr_fields() -> None:
    c = resolve_config("nmtune", overrides={"val_fraction": 0})
    assert c.val_fraction == 0.0
    lr = resolve_config("lr", overrides={"lr_c": 2, "lr_cs": 3, "lr_max_iter": 50})
    assert (lr.lr_c, lr.lr_cs, lr.lr_max_iter) == (2.0, 3, 50)
    assert isinstance(lr.lr_c, float)
    with pytest.raises(ConfigError) as e:
        resolve_config("lr", overrides={"w_svd": 0.1})
    assert e.value.field == "w_svd"


def test_config_error_names_the_field() -> None:
    for method, preset, overrides, field in (
        ("svm", "robust", {}, "method"),
        ("nmtune", "paper", {}, "preset"),
        ("nmtune", "robust", {"epochs": 0}, "epochs"),
        ("nmtune", "robust", {"bogus": 1}, "bogus"),
        (
            "auto",
            "robust",
            {"auto_candidates": [{"method": "lp"}, {"method": "x"}]},
            "auto_candidates[1]",
        ),
    ):
        with pytest.raises(ConfigError) as e:
            resolve_config(method, preset, overrides)
        assert e.value.field == field
