"""Head configuration: methods, presets, validated overrides.

A :class:`HeadConfig` is fully resolved (every hyper-parameter explicit) and frozen. Build one
with :func:`resolve_config`; it records which fields differ from the preset and which parts of
the recipe differ from the paper (``deviations``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tuner.errors import ConfigError

__all__ = [
    "DEFAULT_PRESET",
    "METHODS",
    "PRESETS",
    "TRAINED_METHODS",
    "HeadConfig",
    "resolve_config",
]

#: Methods accepted by :func:`resolve_config` / ``NMTuneClassifier``.
METHODS: tuple[str, ...] = ("lp", "mlp", "nmtune", "auto")
#: Methods that produce a concrete head (``auto`` picks one of them).
TRAINED_METHODS: tuple[str, ...] = ("lp", "mlp", "nmtune")
DEFAULT_PRESET = "paper-code"

_REGULARISERS = ("w_mse", "w_cov", "w_svd")
_NORMS = ("batchnorm", "layernorm", "none")
_DEVICES = ("auto", "cpu", "cuda")
_SCHEDULES = ("cosine", "constant")
_CLASS_WEIGHTS = (None, "balanced")
_AUTO_RULES = ("one-se", "best", "cv")
#: Fields that only ``auto`` accepts (and its candidates may not set).
_AUTO_FIELDS = ("auto_candidates", "auto_rule", "auto_cv_folds")

#: What ``robust`` changes relative to ``paper-code`` (see benchmarks/results/ablation.md):
#: on small text data the paper recipe overfits the training domain; starting the residual
#: at identity and using feature dropout as the missing second view keep the head close to
#: the pre-trained features.
ROBUST_OVERRIDES: dict[str, Any] = {"residual_init": 0.0, "feature_dropout": 0.5}

#: ``auto``'s default grid: lp, mlp, nmtune of the chosen preset, and nmtune with the robust
#: overrides on top of it (each trained, the best on validation kept).
_DEFAULT_AUTO: tuple[tuple[tuple[str, Any], ...], ...] = (
    (("method", "lp"),),
    (("method", "mlp"),),
    (("method", "nmtune"),),
    (("method", "nmtune"), *sorted(ROBUST_OVERRIDES.items())),
)


@dataclass(frozen=True)
class HeadConfig:
    """Every hyper-parameter of one head, resolved from a preset plus overrides.

    The defaults are the ``paper-code`` preset for ``nmtune`` (method.md §3).
    """

    method: str = "nmtune"
    preset: str = DEFAULT_PRESET
    # Regulariser weights (forced to 0 for lp and mlp).
    w_mse: float = 1.0
    w_cov: float = 0.04
    w_svd: float = 0.001
    svd_top_k: int = 5
    # Architecture.
    hidden_ratio: float = 4.0
    num_layers: int = 2
    norm: str = "batchnorm"
    residual: bool = True
    residual_init: float = 1.0
    # Optimisation (head lr / wd; lp uses lp_lr / lp_weight_decay).
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lp_lr: float = 1e-2
    lp_weight_decay: float = 1e-4
    epochs: int = 30
    lp_epochs: int = 30
    batch_size: int = 64
    schedule: str = "cosine"
    # Knobs for accuracy work (paper values by default).
    feature_dropout: float = 0.0
    feature_noise: float = 0.0
    init_classifier_from_lp: bool = False
    class_weight: str | None = None
    # Data, selection, runtime.
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    # auto only: candidates, each a tuple of (field, value) pairs including "method".
    auto_candidates: tuple[tuple[tuple[str, Any], ...], ...] = _DEFAULT_AUTO
    # auto only: "best" = highest validation accuracy; "one-se" = the first candidate (the grid
    # is ordered simplest first) within one binomial standard error of the best; "cv" (opt-in)
    # = the best mean accuracy of stratified k-fold cross-validation on train + validation
    # (ties -> the earlier, simpler candidate); the winner is then trained as a single fit.
    auto_rule: str = "one-se"
    # auto with auto_rule="cv" only: number of folds (k >= 2; cost ~ k trainings per candidate).
    auto_cv_folds: int = 3
    # Filled by resolve_config.
    overrides: tuple[tuple[str, Any], ...] = ()
    deviations: tuple[str, ...] = field(default=())

    @property
    def head_lr(self) -> float:
        """Learning rate of this method (``lp_lr`` for a linear probe)."""
        return self.lp_lr if self.method == "lp" else self.lr

    @property
    def head_weight_decay(self) -> float:
        """Weight decay of this method (``lp_weight_decay`` for a linear probe)."""
        return self.lp_weight_decay if self.method == "lp" else self.weight_decay

    @property
    def head_epochs(self) -> int:
        """Epochs of this method (``lp_epochs`` for a linear probe)."""
        return self.lp_epochs if self.method == "lp" else self.epochs

    def candidate_overrides(self) -> list[dict[str, Any]]:
        """The ``auto`` candidates as a list of override dicts (each has ``method``)."""
        return [dict(c) for c in self.auto_candidates]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field (tuples become lists / dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "auto_candidates":
                value = self.candidate_overrides()
            elif f.name == "overrides":
                value = dict(value)
            elif f.name == "deviations":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadConfig:
        """Rebuild (and re-validate) a config written by :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise ConfigError("config must be a mapping")
        missing = [n for n in ("method", "preset") if n not in data]
        if missing:
            raise ConfigError(f"config lacks {missing}")
        overrides = data.get("overrides", {})
        if not isinstance(overrides, Mapping):
            raise ConfigError("config field 'overrides' must be a mapping")
        resolved = resolve_config(str(data["method"]), str(data["preset"]), dict(overrides))
        # Every stored field must agree with the re-resolution (guards edited blobs).
        for name, value in resolved.to_dict().items():
            if name in data and _json_equal(data[name], value) is False:
                raise ConfigError(
                    f"config field {name!r}={data[name]!r} does not match its preset and "
                    f"overrides ({value!r})"
                )
        return resolved


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


_PAPER_COMMON: dict[str, Any] = {
    "svd_top_k": 5,
    "hidden_ratio": 4.0,
    "num_layers": 2,
    "norm": "batchnorm",
    "residual": True,
    "residual_init": 1.0,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "lp_lr": 1e-2,
    "lp_weight_decay": 1e-4,
    "epochs": 30,
    "lp_epochs": 30,
    "batch_size": 64,
    "schedule": "cosine",
    "feature_dropout": 0.0,
    "feature_noise": 0.0,
    "init_classifier_from_lp": False,
    "class_weight": None,
}

#: Named presets: field -> value. ``paper-code``: weights of the released code / README;
#: ``paper-text``: 0.01 for each regulariser as written in the paper (both exactly as the
#: paper); ``robust``: paper-code + ``ROBUST_OVERRIDES`` (our recipe for small text data).
PRESETS: dict[str, dict[str, Any]] = {
    "paper-code": {**_PAPER_COMMON, "w_mse": 1.0, "w_cov": 0.04, "w_svd": 0.001},
    "paper-text": {**_PAPER_COMMON, "w_mse": 0.01, "w_cov": 0.01, "w_svd": 0.01},
    "robust": {**_PAPER_COMMON, "w_mse": 1.0, "w_cov": 0.04, "w_svd": 0.001, **ROBUST_OVERRIDES},
}

_OVERRIDABLE: tuple[str, ...] = tuple(
    f.name
    for f in fields(HeadConfig)
    if f.name not in ("method", "preset", "overrides", "deviations")
)


def _check_number(name: str, value: Any, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an int" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{name} must be an int, got {value!r}")
            value = int(value)
        return int(value)
    fvalue = float(value)
    if not math.isfinite(fvalue):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return fvalue


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def _validate_field(name: str, value: Any) -> Any:
    """Type- and range-check one field; return the normalised value."""
    if name in _REGULARISERS:
        v = _check_number(name, value, integer=False)
        if v < 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")
        return v
    if name in ("lr", "lp_lr"):
        v = _check_number(name, value, integer=False)
        if v <= 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")
        return v
    if name in ("weight_decay", "lp_weight_decay", "feature_noise"):
        v = _check_number(name, value, integer=False)
        if v < 0:
            raise ConfigError(f"{name} must be >= 0, got {value!r}")
        return v
    if name == "residual_init":
        return _check_number(name, value, integer=False)
    if name == "hidden_ratio":
        v = _check_number(name, value, integer=False)
        if v <= 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")
        return v
    if name == "feature_dropout":
        v = _check_number(name, value, integer=False)
        if not 0.0 <= v < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        return v
    if name == "val_fraction":
        v = _check_number(name, value, integer=False)
        if not 0.0 < v < 1.0:
            raise ConfigError(f"{name} must be in (0, 1), got {value!r}")
        return v
    if name == "auto_cv_folds":
        v = _check_number(name, value, integer=True)
        if v < 2:
            raise ConfigError(f"{name} must be >= 2, got {value!r}")
        return v
    if name in ("epochs", "lp_epochs", "num_layers", "svd_top_k"):
        v = _check_number(name, value, integer=True)
        if v < 1:
            raise ConfigError(f"{name} must be >= 1, got {value!r}")
        return v
    if name == "batch_size":
        v = _check_number(name, value, integer=True)
        if v < 2:
            raise ConfigError(f"{name} must be >= 2 (batch statistics), got {value!r}")
        return v
    if name == "seed":
        v = _check_number(name, value, integer=True)
        if not 0 <= v < 2**63:
            raise ConfigError(f"{name} must be in [0, 2**63), got {value!r}")
        return v
    if name in ("residual", "init_classifier_from_lp"):
        return _check_bool(name, value)
    if name == "norm":
        return _check_choice(name, value, _NORMS)
    if name == "device":
        return _check_choice(name, value, _DEVICES)
    if name == "schedule":
        return _check_choice(name, value, _SCHEDULES)
    if name == "class_weight":
        return _check_choice(name, value, _CLASS_WEIGHTS)
    if name == "auto_candidates":
        return _validate_candidates(value)
    if name == "auto_rule":
        return _check_choice(name, value, _AUTO_RULES)
    raise ConfigError(_unknown_message(name))  # pragma: no cover - guarded by the caller


def _unknown_message(name: str) -> str:
    return f"unknown config field {name!r}; valid fields: {', '.join(sorted(_OVERRIDABLE))}"


def _validate_candidates(value: Any) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or not value:
        raise ConfigError("auto_candidates must be a non-empty list of override dicts")
    out: list[tuple[tuple[str, Any], ...]] = []
    for i, cand in enumerate(value):
        items = dict(cand) if isinstance(cand, list | tuple) else cand
        if not isinstance(items, Mapping):
            raise ConfigError(f"auto_candidates[{i}] must be a dict, got {cand!r}")
        method = items.get("method")
        if method not in TRAINED_METHODS:
            raise ConfigError(
                f"auto_candidates[{i}] needs 'method' in {list(TRAINED_METHODS)}, got {method!r}"
            )
        rest = {k: v for k, v in items.items() if k != "method"}
        if any(k in rest for k in _AUTO_FIELDS):
            raise ConfigError(f"auto_candidates[{i}] may not set {' / '.join(_AUTO_FIELDS)}")
        checked = _check_overrides(str(method), rest)
        out.append((("method", method), *sorted(checked.items())))
    return tuple(out)


def _check_overrides(method: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if not isinstance(name, str) or name not in _OVERRIDABLE:
            raise ConfigError(_unknown_message(str(name)))
        if method in ("lp", "mlp") and name in _REGULARISERS:
            raise ConfigError(
                f"{name} cannot be set for method {method!r}: it trains without regularisers "
                "(use method 'nmtune')"
            )
        if name in _AUTO_FIELDS and method != "auto":
            raise ConfigError(f"{name} is only valid with method 'auto'")
        checked[name] = _validate_field(name, value)
    return checked


def resolve_config(
    method: str = "nmtune",
    preset: str = DEFAULT_PRESET,
    overrides: Mapping[str, Any] | None = None,
) -> HeadConfig:
    """Resolve ``method`` + ``preset`` + ``overrides`` into a validated :class:`HeadConfig`.

    Raises
    ------
    ConfigError
        Unknown method / preset / field (the message lists the valid ones) or a value of the
        wrong type or out of range.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {sorted(PRESETS)}")
    checked = _check_overrides(method, dict(overrides or {}))
    values: dict[str, Any] = dict(PRESETS[preset])
    if method in ("lp", "mlp"):
        values.update({k: 0.0 for k in _REGULARISERS})
    values.update(checked)
    deviations: list[str] = []
    if method in ("mlp", "nmtune", "auto"):
        deviations.append(
            "single view: one fixed embedding per input instead of two augmented views"
        )
    for name in sorted(checked):
        if name in ("seed", "device", "val_fraction", *_AUTO_FIELDS):
            continue  # run settings, not part of the paper recipe
        base = PRESETS[preset].get(name)
        if not _json_equal(checked[name], base):
            deviations.append(f"{name}={checked[name]!r} (preset {preset!r}: {base!r})")
    cfg = HeadConfig(
        method=method,
        preset=preset,
        overrides=tuple(sorted(checked.items(), key=lambda kv: kv[0])),
        deviations=tuple(deviations),
        **values,
    )
    return cfg
