"""Head configuration: methods, presets, validated overrides.

A :class:`HeadConfig` is fully resolved (every hyper-parameter explicit) and frozen. Build one
with :func:`resolve_config`; it records which fields differ from the preset and which parts of
the recipe differ from the paper (``deviations``). The dataclass defaults ARE the
``paper-code`` recipe: the presets are derived from them, so every number lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from nmtune.tuner.errors import ConfigError
from nmtune.tuner.validation import Rule, boolean, choice, integer, json_equal, number, optional

__all__ = [
    "AUTO_FIELDS",
    "DEFAULT_PRESET",
    "METHODS",
    "PRESETS",
    "ROBUST_OVERRIDES",
    "TRAINED_METHODS",
    "HeadConfig",
    "resolve_config",
]

#: Methods accepted by :func:`resolve_config` / ``NMTuneClassifier``.
METHODS: tuple[str, ...] = ("lr", "lp", "mlp", "nmtune", "auto")
#: Methods that produce a concrete head (``auto`` picks one of them).
TRAINED_METHODS: tuple[str, ...] = ("lr", "lp", "mlp", "nmtune")
#: Methods trained by the torch loop (mini-batch AdamW); ``lr`` is solved full batch.
TORCH_METHODS: tuple[str, ...] = ("lp", "mlp", "nmtune")
#: The default preset: NMTune grown from the tuned logistic regression (see ``robust``).
DEFAULT_PRESET = "robust"

REGULARISERS: tuple[str, ...] = ("w_mse", "w_cov", "w_svd")
#: Fields that only ``auto`` accepts (and its candidates may not set).
AUTO_FIELDS: tuple[str, ...] = (
    "auto_candidates",
    "auto_rule",
    "auto_signal",
    "auto_cv_folds",
    "auto_cv_repeats",
    "auto_cv_max_rows",
    "auto_time_budget_s",
    "auto_min_per_class",
    "auto_race",
    "auto_noise_robust",
)
#: Run settings: never part of the recipe, so never a deviation from the paper.
RUN_SETTINGS: tuple[str, ...] = ("seed", "device", *AUTO_FIELDS)

#: What ``robust`` changes relative to ``paper-code``: the paper recipe, transplanted to small
#: text data, overfits the training domain (method.md §5). ``robust`` starts the head AT the
#: lr solution (classifier = the cross-validated logistic regression, residual scale 0, so
#: epoch 0 is exactly lr), uses feature dropout as the missing second view, and selects the
#: epoch on validation with epoch 0 included: the head only moves away from lr where the
#: validation data says so. A head that starts at the solution needs a short way, not the
#: 300-step floor of a head trained from scratch: with 100 steps, CV-selected robust heads
#: at 32 examples per class were as good or better (VADER movies / tweets, 5 seeds:
#: benchmarks/results/study_min_steps.md), at half the fit time. For the same reason it runs
#: 10 epochs, not the paper's 30 (a third of the steps from ~200 rows up): with 30, the head
#: drifts from lr on large data where in-domain validation cannot see it (VADER movies, full
#: data: -4.4 OOD against LRCV, worst seed -8.9; 10 epochs: -0.5, worst -2.6); over the 8
#: dev points at 512 per class and full data 10 epochs was as good or better on 7 (the loss:
#: WordNet full, -0.8 OOD over 3 seeds); benchmarks/results/study_epochs.md.
ROBUST_OVERRIDES: dict[str, Any] = {
    "init_from_lr": True,
    "residual_init": 0.0,
    "feature_dropout": 0.5,
    "min_steps": 100,
    "epochs": 10,
}

#: auto's paper-code candidate (4x wide, trained from scratch: ~8 D^2 weights, 1.2 M at
#: D = 384) is fitted only when the median class has at least this many examples. Below it,
#: on the dev data, it never came within one standard error of lr (benchmarks/results/
#: learning_curve.md and lc_session9.md: 0 picks at 8-512 per class; -3.4 to +0.9 points
#: against lr, below it in 10 of 12 fits from 512 per class; lc_session12_vader.json: its CV
#: below lr's on all 10 fits at 512 per class), while its 3-fold CV was ~80 % of auto's time.
PAPER_CODE_MIN_PER_CLASS = 256

#: The candidate ``auto_noise_robust`` adds to auto's grid, second (right after the first,
#: simplest one): a linear probe grown from the lr solution (robust preset: epoch 0 is lr)
#: and trained on with the generalized cross entropy (q = 0.7), which bounds the pull of a
#: wrongly labelled row. Its epoch is chosen by the same cross-validation as every other
#: candidate's, on the labels as given: with uniform flips a head's accuracy on noisy labels
#: is an increasing affine function of its accuracy on clean ones, so that CV ranks heads as
#: clean labels would, and it keeps epoch 0 (= lr) where the loss does not help. On the
#: label-audit benchmark (benchmarks/results/label_audit.md) it gained most with many
#: classes (fortunes, 20 % uniform flips: +4.4 points over lr; lp with plain CE: +1.1).
NOISE_ROBUST_CANDIDATE: tuple[tuple[str, Any], ...] = (
    ("method", "lp"),
    ("loss", "gce"),
    ("preset", "robust"),
)

#: ``auto``'s default grid, simplest first (the one-standard-error rule prefers earlier
#: entries): the tuned linear model lr; nmtune grown from it (robust, a 1x-wide residual MLP);
#: the paper's nmtune (paper-code, 4x wide, from scratch). One candidate per inductive bias:
#: near-copies (robust at 4x next to 1x) add cost and more chances for a noisy CV score to
#: win by luck, not a new kind of head. A candidate's ``preset`` defaults to auto's.
#: (``mlp`` is nmtune without its regularisers: add it with ``auto_candidates`` if wanted.)
_DEFAULT_AUTO: tuple[tuple[tuple[str, Any], ...], ...] = (
    (("method", "lr"),),
    (("method", "nmtune"), ("hidden_ratio", 1.0), ("preset", "robust")),
    (("method", "nmtune"), ("min_per_class", PAPER_CODE_MIN_PER_CLASS), ("preset", "paper-code")),
)


@dataclass(frozen=True)
class HeadConfig:
    """Every hyper-parameter of one head, resolved from a preset plus overrides.

    The defaults are the ``paper-code`` preset for ``nmtune`` (method.md §3) plus our
    small-data and selection settings (``min_steps``, ``min_holdout``, ``cv_folds``, ``lr_*``).
    """

    method: str = "nmtune"
    preset: str = DEFAULT_PRESET
    # Regulariser weights (forced to 0 for lr, lp and mlp).
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
    # Start the branch's last linear layer at zero (h(f) = 0, so z = f at step 0 whatever
    # ``residual_init``) instead of relying on a zero scale: the branch then learns from the
    # first step, where with ``residual_init = 0`` the scale stays near 0 for short runs.
    zero_init_branch: bool = False
    # Optimisation (head lr / wd; lp uses lp_lr / lp_weight_decay).
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lp_lr: float = 1e-2
    lp_weight_decay: float = 1e-4
    epochs: int = 30
    lp_epochs: int = 30
    batch_size: int = 64
    schedule: str = "cosine"
    # Floor on optimisation steps: on small data an epoch is a few steps, so each of the
    # `epochs` evaluation rounds then runs several passes (the schedule is in steps).
    min_steps: int = 300
    # Knobs for accuracy work (paper values by default).
    feature_dropout: float = 0.0
    feature_noise: float = 0.0
    init_classifier_from_lp: bool = False
    # Start mlp / nmtune from the lr solution (classifier = lr's weights).
    init_from_lr: bool = False
    class_weight: str | None = None
    # Classification loss of the torch heads (lp, mlp, nmtune; lr always solves CE): "ce",
    # or a noise-robust one, "gce" (generalized CE, exponent gce_q) or "sce" (symmetric CE,
    # sce_alpha * CE + sce_beta * reverse CE). See tuner.losses.classification_loss.
    loss: str = "ce"
    gce_q: float = 0.7
    sce_alpha: float = 0.1
    sce_beta: float = 1.0
    # lr: inverse L2 strength C (None = chosen by stratified k-fold CV over lr_cs values
    # logspace(-4, 4), as scikit-learn's LogisticRegressionCV), L-BFGS iterations per C.
    lr_c: float | None = None
    lr_cs: int = 10
    lr_max_iter: int = 100
    # lr's CV curve is averaged over this many fold assignments when there are fewer than
    # 10 * min_holdout rows (small data, where one assignment is noisy; cheap: solved jointly).
    lr_cv_repeats: int = 3
    # Data, selection, runtime. val_fraction: the stratified part of train held out when no
    # validation is given (0 = none: train on everything, keep the last epoch); a carved split
    # smaller than min_holdout rows is replaced by cv_folds-fold cross-validation.
    val_fraction: float = 0.1
    min_holdout: int = 200
    cv_folds: int = 5
    # Early stopping on a validation split (holdout / target selection): stop once this many
    # evaluation rounds (epochs) have passed without a better validation score than the kept
    # one (0 = never stop early). The schedule stays the full one, so every epoch trained is
    # the same as without early stopping: the kept head differs only when a later epoch would
    # have beaten it. Cross-validation folds always run every epoch (their curves are averaged).
    patience: int = 10
    seed: int = 0
    device: str = "auto"
    # auto only: candidates, each a tuple of (field, value) pairs including "method".
    auto_candidates: tuple[tuple[tuple[str, Any], ...], ...] = _DEFAULT_AUTO
    # auto only: "one-se" = the first candidate (the grid is ordered simplest first) within
    # one standard error of the best score; "best" = the highest score; "cv" = legacy name of
    # auto_signal="cv" with rule "best".
    auto_rule: str = "one-se"
    # auto only: the selection signal. "auto": k-fold CV (repeated) on train + validation when
    # there are at most auto_cv_max_rows rows, else the validation split; "cv"; "holdout".
    # Labelled target-domain validation data, when given to fit, always wins.
    auto_signal: str = "auto"
    auto_cv_folds: int = 3
    auto_cv_repeats: int = 2
    auto_cv_max_rows: int = 4000
    # auto only: the selection's time bound, in seconds from auto's start (0 = none). A
    # candidate after the first whose training is projected, from its steps so far, to end
    # past it (a CV fold: past its share of the time left) stops and is listed as
    # over_budget (the first, simplest candidate always runs); a further CV repeat runs only
    # to confirm a pick other than the simplest candidate, and only if it is expected to end
    # within it. On a CPU this keeps a 4x-wide candidate on 1,536-d vectors from taking an hour.
    auto_time_budget_s: float = 300.0
    # auto only: when the median class has fewer training examples than this, only the first
    # (the simplest) candidate is fitted: a few rows per class cannot rank heads. A candidate
    # may also set its own floor ("min_per_class" in its auto_candidates entry).
    auto_min_per_class: int = 16
    # auto only, under CV with the one-se rule: after each fold of the first repeat but the
    # last, a candidate whose best epoch scores no higher than the first (simplest)
    # candidate on the rows held out so far stops there (its epoch was even chosen on those
    # rows, so it is unlikely to beat the first candidate by the one standard error the pick
    # needs); it is reported with its partial CV score and not picked. False: every
    # candidate runs every fold.
    auto_race: bool = True
    # auto only: add NOISE_ROBUST_CANDIDATE (lp + generalized cross entropy, grown from lr)
    # right after the first candidate, unless the grid already has a candidate with a
    # noise-robust loss. The service turns it on for an auto head trained through a label
    # audit (``audit_id``) unless the overrides set it.
    auto_noise_robust: bool = False
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
        """The ``auto`` candidates as a list of override dicts (each has ``method``), with
        :data:`NOISE_ROBUST_CANDIDATE` second when ``auto_noise_robust`` adds it."""
        out = [dict(c) for c in self.auto_candidates]
        if self.auto_noise_robust and not any(c.get("loss", "ce") != "ce" for c in out):
            out.insert(1, dict(NOISE_ROBUST_CANDIDATE))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field (tuples become lists / dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "auto_candidates":  # the grid as given (not auto_noise_robust's)
                value = [dict(c) for c in self.auto_candidates]
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
            raise ConfigError("config field 'overrides' must be a mapping", field="overrides")
        resolved = resolve_config(str(data["method"]), str(data["preset"]), dict(overrides))
        # The stored values are the record of how the head was trained: they win over what
        # the preset and overrides resolve to today (a later version may change a preset or
        # a default; a head trained before must still load, and say what it was trained
        # with). Each is checked by today's rule for its field; fields this version does not
        # know are ignored, fields the record lacks (added since) take today's value.
        stored = {name: _RULES[name](name, data[name]) for name in _OVERRIDABLE if name in data}
        deviations = data.get("deviations", resolved.deviations)
        if not isinstance(deviations, list | tuple) or not all(
            isinstance(d, str) for d in deviations
        ):
            raise ConfigError("config field 'deviations' must be a list of strings", "deviations")
        return replace(resolved, **stored, deviations=tuple(deviations))


#: Fields a preset sets (the recipe); everything else is a run or selection setting.
_RECIPE_FIELDS: tuple[str, ...] = (
    "w_mse",
    "w_cov",
    "w_svd",
    "svd_top_k",
    "hidden_ratio",
    "num_layers",
    "norm",
    "residual",
    "residual_init",
    "zero_init_branch",
    "lr",
    "weight_decay",
    "lp_lr",
    "lp_weight_decay",
    "epochs",
    "lp_epochs",
    "batch_size",
    "schedule",
    "feature_dropout",
    "feature_noise",
    "init_classifier_from_lp",
    "init_from_lr",
    "class_weight",
)
_PAPER_CODE: dict[str, Any] = {
    f.name: f.default for f in fields(HeadConfig) if f.name in _RECIPE_FIELDS
}

#: Named presets: field -> value. ``paper-code``: weights of the released code / README (the
#: HeadConfig defaults); ``paper-text``: 0.01 for each regulariser as written in the paper;
#: ``robust``: paper-code + ``ROBUST_OVERRIDES`` (our recipe for small text data).
PRESETS: dict[str, dict[str, Any]] = {
    "paper-code": dict(_PAPER_CODE),
    "paper-text": {**_PAPER_CODE, "w_mse": 0.01, "w_cov": 0.01, "w_svd": 0.01},
    "robust": {**_PAPER_CODE, **ROBUST_OVERRIDES},
}

_OVERRIDABLE: tuple[str, ...] = tuple(
    f.name
    for f in fields(HeadConfig)
    if f.name not in ("method", "preset", "overrides", "deviations")
)

# ----------------------------------------------------------------------------- validation
#: One rule per overridable field: type, range, normalisation.
_RULES: dict[str, Rule] = {
    # Every numeric field has an upper bound too: one head's training must stay a bounded
    # amount of work (a shared service trains many tenants' heads; see docs/production.md).
    "w_mse": number(0.0, 1000.0),
    "w_cov": number(0.0, 1000.0),
    "w_svd": number(0.0, 1000.0),
    "svd_top_k": integer(1, 1024),
    "hidden_ratio": number(0.0, 16.0, lo_open=True),
    "num_layers": integer(1, 16),
    "norm": choice("batchnorm", "layernorm", "none"),
    "residual": boolean,
    "residual_init": number(-100.0, 100.0),
    "zero_init_branch": boolean,
    "lr": number(0.0, 10.0, lo_open=True),
    "weight_decay": number(0.0, 10.0),
    "lp_lr": number(0.0, 10.0, lo_open=True),
    "lp_weight_decay": number(0.0, 10.0),
    "epochs": integer(1, 10_000),
    "lp_epochs": integer(1, 10_000),
    "batch_size": integer(2, 65_536, why=" (batch statistics)"),
    "schedule": choice("cosine", "constant"),
    "min_steps": integer(0, 1_000_000),
    "feature_dropout": number(0.0, 1.0, hi_open=True),
    "feature_noise": number(0.0, 100.0),
    "init_classifier_from_lp": boolean,
    "init_from_lr": boolean,
    "class_weight": optional(choice("balanced")),
    "loss": choice("ce", "gce", "sce"),
    "gce_q": number(0.0, 1.0, lo_open=True),
    "sce_alpha": number(0.0, 100.0),
    "sce_beta": number(0.0, 100.0),
    "lr_c": optional(number(0.0, 1e8, lo_open=True)),
    "lr_cs": integer(1, 100),
    "lr_max_iter": integer(1, 100_000),
    "lr_cv_repeats": integer(1, 20),
    "val_fraction": number(0.0, 1.0, hi_open=True),
    "min_holdout": integer(0, 1_000_000),
    "cv_folds": integer(2, 50),
    "patience": integer(0, 10_000),
    "seed": integer(0, 2**63 - 1),
    "device": choice("auto", "cpu", "cuda"),
    "auto_rule": choice("one-se", "best", "cv"),
    "auto_signal": choice("auto", "cv", "holdout"),
    "auto_cv_folds": integer(2, 20),
    "auto_cv_repeats": integer(1, 20),
    "auto_cv_max_rows": integer(0, 1_000_000),
    "auto_time_budget_s": number(0.0, 3600.0),
    "auto_min_per_class": integer(0, 1_000_000),
    "auto_race": boolean,
    "auto_noise_robust": boolean,
}

#: At most this many ``auto_candidates`` (each one is a full fit per fold).
MAX_AUTO_CANDIDATES = 16


def _unknown_message(name: str) -> str:
    return f"unknown config field {name!r}; valid fields: {', '.join(sorted(_OVERRIDABLE))}"


def _validate_candidates(name: str, value: Any) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{name} must be a non-empty list of override dicts", field=name)
    if len(value) > MAX_AUTO_CANDIDATES:
        raise ConfigError(
            f"{name} must have at most {MAX_AUTO_CANDIDATES} candidates, got {len(value)}",
            field=name,
        )
    out: list[tuple[tuple[str, Any], ...]] = []
    for i, cand in enumerate(value):
        where = f"{name}[{i}]"
        items = dict(cand) if isinstance(cand, list | tuple) else cand
        if not isinstance(items, Mapping):
            raise ConfigError(f"{where} must be a dict, got {cand!r}", field=where)
        method = items.get("method")
        if method not in TRAINED_METHODS:
            raise ConfigError(
                f"{where} needs 'method' in {list(TRAINED_METHODS)}, got {method!r}", field=where
            )
        rest = {k: v for k, v in items.items() if k not in ("method", "preset", "min_per_class")}
        if any(k in rest for k in AUTO_FIELDS):
            raise ConfigError(f"{where} may not set {' / '.join(AUTO_FIELDS)}", field=where)
        extra: tuple[tuple[str, Any], ...] = ()
        if "preset" in items:
            if items["preset"] not in PRESETS:
                raise ConfigError(
                    f"{where}: unknown preset {items['preset']!r}; valid: {sorted(PRESETS)}",
                    field=where,
                )
            extra = (("preset", items["preset"]),)
        try:
            if "min_per_class" in items:  # the same bounds as auto_min_per_class
                floor = _RULES["auto_min_per_class"]("min_per_class", items["min_per_class"])
                extra = (*extra, ("min_per_class", floor))
            checked = _check_overrides(str(method), rest)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", field=where) from exc
        out.append((("method", method), *sorted((*checked.items(), *extra))))
    return tuple(out)


_RULES["auto_candidates"] = _validate_candidates
assert set(_RULES) == set(_OVERRIDABLE), "every overridable field needs a rule"


def _check_overrides(method: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if not isinstance(name, str) or name not in _OVERRIDABLE:
            raise ConfigError(_unknown_message(str(name)), field=str(name))
        if method in ("lr", "lp", "mlp") and name in REGULARISERS:
            raise ConfigError(
                f"{name} cannot be set for method {method!r}: it trains without regularisers "
                "(use method 'nmtune')",
                field=name,
            )
        if name in AUTO_FIELDS and method != "auto":
            raise ConfigError(f"{name} is only valid with method 'auto'", field=name)
        checked[name] = _RULES[name](name, value)
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
        wrong type or out of range; ``.field`` names the culprit.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; valid methods: {list(METHODS)}", "method")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {sorted(PRESETS)}", "preset")
    checked = _check_overrides(method, dict(overrides or {}))
    values: dict[str, Any] = dict(PRESETS[preset])
    if method in ("lr", "lp", "mlp"):
        values.update({k: 0.0 for k in REGULARISERS})
    values.update(checked)
    deviations: list[str] = []
    if method in ("mlp", "nmtune", "auto"):
        deviations.append(
            "single view: one fixed embedding per input instead of two augmented views"
        )
    if method == "lr" and values.get("loss", "ce") != "ce":
        deviations.append(
            f"loss={values['loss']!r} has no effect on lr (it solves cross entropy to "
            "convergence; robust losses train lp, mlp and nmtune heads)"
        )
    for name in sorted(checked):
        if name in RUN_SETTINGS:
            continue  # run settings, not part of the paper recipe
        base = getattr(HeadConfig, name, None) if name not in PRESETS[preset] else None
        base = PRESETS[preset].get(name, base)
        if not json_equal(checked[name], base):
            deviations.append(f"{name}={checked[name]!r} (preset {preset!r}: {base!r})")
    return HeadConfig(
        method=method,
        preset=preset,
        overrides=tuple(sorted(checked.items(), key=lambda kv: kv[0])),
        deviations=tuple(deviations),
        **values,
    )
