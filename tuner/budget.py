"""A cross-field estimate of a head's training work, for a compute budget per job.

Each override has its own range (``tuner.config``), but their product is what costs:
``epochs`` x rows x width. ``training_work`` estimates the multiply-adds of the forward
passes one training run makes (backward passes cost a constant factor more, which the budget
absorbs):

* torch heads (lp, mlp, nmtune): rows processed = max(epochs x n, min_steps x min(batch, n)),
  times the head's multiply-adds per row: dim x classes (lp), or the MLP's
  sum(width_i x width_{i+1}) over widths [dim, hidden x (num_layers - 1), dim] with
  hidden = round(dim x hidden_ratio) (mlp, nmtune; plus the dim x classes classifier);
* lr: L-BFGS iterations (lr_max_iter) x n x dim x classes, times the fits its C search makes
  (cv_folds x lr_cv_repeats + 1 when lr_c is not given);
* auto: the sum over its candidates, each times the fits its selection makes
  (auto_cv_folds x auto_cv_repeats + 1 when the rows are at most auto_cv_max_rows, else 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from nmtune.tuner.auto import candidate_configs
from nmtune.tuner.config import AUTO_FIELDS, HeadConfig


@dataclass(frozen=True)
class WorkEstimate:
    total: float  # multiply-adds
    explanation: str  # the factors, for an error message
    fields: tuple[str, ...]  # the config fields the estimate depends on


def _mlp_macs(dim: int, hidden_ratio: float, num_layers: int, n_classes: int) -> float:
    hidden = max(1, round(dim * hidden_ratio))
    widths = [dim] + [hidden] * (num_layers - 1) + [dim]
    return float(sum(a * b for a, b in pairwise(widths))) + dim * n_classes


def _single(config: HeadConfig, n: int, dim: int, n_classes: int) -> WorkEstimate:
    n = max(1, n)
    if config.method == "lr":
        # the C path of one fold is solved jointly (warm starts): a fit per fold and repeat
        fits = 1 if config.lr_c is not None else config.cv_folds * config.lr_cv_repeats + 1
        per_fit = float(config.lr_max_iter) * n * dim * n_classes
        return WorkEstimate(
            fits * per_fit,
            f"lr: {fits} fits x lr_max_iter {config.lr_max_iter} x {n} rows x dim {dim} x "
            f"{n_classes} classes",
            ("lr_max_iter", "cv_folds", "lr_cv_repeats", "lr_c"),
        )
    epochs = config.head_epochs
    rows = max(float(epochs) * n, float(config.min_steps) * min(config.batch_size, n))
    epochs_field = "lp_epochs" if config.method == "lp" else "epochs"
    if config.method == "lp":
        per_row = float(dim * n_classes)
        return WorkEstimate(
            rows * per_row,
            f"lp: max({epochs_field} {epochs} x {n} rows, min_steps {config.min_steps} x "
            f"batch_size {config.batch_size}) x dim {dim} x {n_classes} classes",
            (epochs_field, "min_steps", "batch_size"),
        )
    per_row = _mlp_macs(dim, config.hidden_ratio, config.num_layers, n_classes)
    return WorkEstimate(
        rows * per_row,
        f"{config.method}: max({epochs_field} {epochs} x {n} rows, min_steps "
        f"{config.min_steps} x batch_size {config.batch_size}) x {per_row:.3g} per row (dim "
        f"{dim}, hidden_ratio {config.hidden_ratio}, num_layers {config.num_layers})",
        (epochs_field, "min_steps", "batch_size", "hidden_ratio", "num_layers"),
    )


def training_work(config: HeadConfig, n_rows: int, dim: int, n_classes: int) -> WorkEstimate:
    """The estimated multiply-adds of training ``config`` on ``n_rows`` rows of ``dim``
    features with ``n_classes`` classes."""
    n_classes = max(2, n_classes)
    if config.method != "auto":
        return _single(config, n_rows, dim, n_classes)
    cv = n_rows <= config.auto_cv_max_rows or config.auto_signal == "cv"
    fits = config.auto_cv_folds * config.auto_cv_repeats + 1 if cv else 2
    total, parts, fields = 0.0, [], {"auto_cv_folds", "auto_cv_repeats", "auto_candidates"}
    # each candidate resolved as auto fits it: its own preset (robust and paper-code differ
    # in min_steps), the user's shared overrides, then the candidate's entry
    shared = {k: v for k, v in config.overrides if k not in AUTO_FIELDS}
    for _, candidate in candidate_configs(config, shared):
        sub = _single(candidate, n_rows, dim, n_classes)
        total += fits * sub.total
        parts.append(sub.explanation)
        fields.update(sub.fields)
    return WorkEstimate(
        total,
        f"auto: {fits} fits x each of {len(parts)} candidates ({'; '.join(parts)})",
        tuple(sorted(fields)),
    )
