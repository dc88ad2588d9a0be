"""The training loop of the torch heads (lp, mlp, nmtune; auto calls it per candidate/fold).

Reads top to bottom: device -> seeded init (classifier optionally at the lr solution) ->
AdamW + per-step cosine schedule with a floor of ``min_steps`` -> epochs (evaluation rounds)
of shuffled mini-batches that cover every row -> validation after each epoch -> the kept
state (best validation epoch, a fixed epoch, or the last) -> progress callback (may cancel)
-> early stop once ``patience`` epochs have not beaten the kept one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.config import HeadConfig
from nmtune.tuner.errors import ConfigError, OverBudget, TrainingCancelled
from nmtune.tuner.heads import HeadModule, build_head
from nmtune.tuner.losses import augment, compute_loss
from nmtune.tuner.metrics import index_scores

__all__ = [
    "EpochReport",
    "ProgressCallback",
    "TrainResult",
    "balanced_class_weights",
    "batch_indices",
    "predict_logits",
    "resolve_device",
    "schedule_shape",
    "train_head",
    "training_step",
]

logger = logging.getLogger(__name__)

LOSS_KEYS: tuple[str, ...] = ("ce", "mse", "cov", "svd", "total")


@dataclass(frozen=True)
class EpochReport:
    """Progress of one epoch, passed to the ``callback`` of ``fit``."""

    method: str
    candidate: int  # index into auto's candidates (0 otherwise)
    epoch: int  # 1-based
    epochs: int
    losses: dict[str, float]  # ce, mse, cov, svd, total: means over the epoch's batches
    val_accuracy: float
    val_macro_f1: float
    elapsed_s: float  # since the start of this candidate's training
    phase: str = "fit"  # "cv": a cross-validation fold (selection), "fit": the kept head

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return dataclasses.asdict(self)


#: ``callback(report)``; returning False (or raising TrainingCancelled) stops training.
ProgressCallback = Callable[[EpochReport], "bool | None"]


@dataclass
class TrainResult:
    """A trained head (best validation epoch loaded) and its record."""

    model: HeadModule
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_accuracy: float
    best_val_macro_f1: float
    device: str
    details: dict[str, Any] = field(default_factory=dict)  # steps per epoch, lp/lr init


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without CUDA is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def balanced_class_weights(y: npt.NDArray[np.int64], n_classes: int) -> npt.NDArray[np.float64]:
    """w_c = n / (C * n_c) (sklearn's 'balanced'); classes absent from y get weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return np.divide(
        y.size, n_classes * counts, out=np.zeros(n_classes, dtype=np.float64), where=counts > 0
    )


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled mini-batches covering every row once: round(n / batch_size) batches (at
    least one) of near-equal size, so no row is dropped and no batch is tiny."""
    perm = torch.randperm(n, generator=generator)
    n_batches = max(1, round(n / batch_size))
    return list(torch.tensor_split(perm, n_batches))


def schedule_shape(n: int, config: HeadConfig) -> tuple[int, int]:
    """(passes per evaluation round, optimiser steps per pass) for n training rows.

    An "epoch" in reports is one evaluation round: one pass over the data, or several when
    ``epochs`` passes would take fewer than ``min_steps`` optimiser steps (small data).
    """
    steps_per_pass = max(1, round(n / config.batch_size))
    epochs = config.head_epochs
    passes = max(1, math.ceil(config.min_steps / (epochs * steps_per_pass)))
    return passes, steps_per_pass


def training_step(
    model: HeadModule,
    optimizer: torch.optim.Optimizer,
    f: torch.Tensor,
    y: torch.Tensor,
    config: HeadConfig,
    class_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One forward + backward + optimiser step on a batch f (B, D), y (B,)."""
    logits, z = model(augment(f, config))  # (B, C), (B, D)
    total, terms = compute_loss(logits, z, f, y, config, class_weight)
    optimizer.zero_grad(set_to_none=True)
    total.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return terms


@torch.no_grad()
def predict_logits(model: HeadModule, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Eval-mode logits (N, C) in chunks; restores the module's previous mode. A module
    already wholly in eval mode (a loaded head serving predictions) is left as it is: one
    read of the submodules' modes instead of setting every one twice, a noticeable share of
    a small batch's time."""
    toggle = any(m.training for m in model.modules())
    was_training = model.training
    if toggle:
        model.eval()
    out = [model(x[i : i + chunk])[0] for i in range(0, x.shape[0], chunk)]
    if toggle:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, model.classifier.out_features))


def _evaluate(
    model: HeadModule,
    x: torch.Tensor,
    y: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64] | None = None,
) -> tuple[tuple[float, float], list[float] | None]:
    """((accuracy, macro-F1) on (x, y), accuracy of each group of rows or None)."""
    pred = predict_logits(model, x).argmax(dim=1).cpu().numpy()
    per_group = None
    if groups is not None:
        hit = pred == y
        per_group = [float(hit[groups == g].mean()) for g in range(int(groups.max()) + 1)]
    return index_scores(y, pred, model.classifier.out_features), per_group


def train_head(
    config: HeadConfig,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    n_classes: int,
    *,
    x_val: npt.NDArray[np.float32] | None = None,
    y_val: npt.NDArray[np.int64] | None = None,
    stop_at: int | None = None,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    callback: ProgressCallback | None = None,
    candidate: int = 0,
    val_groups: npt.NDArray[np.int64] | None = None,
    patience: int = 0,
    deadline: float | None = None,
) -> TrainResult:
    """Train one torch head of ``config.method`` ('lp', 'mlp', 'nmtune').

    Which state is kept: with ``(x_val, y_val)`` the best validation epoch (accuracy, then
    macro-F1, then the earliest); with ``stop_at`` the state after that many epochs (the
    schedule is the full one, so it matches a cross-validated epoch curve); else the last.
    ``init`` = (weight (C, D), bias (C,)) starts the classifier there (the lr solution);
    epoch 0, the initial state, is then a candidate too. ``val_groups`` (one group index per
    validation row, 0..G-1): each history entry also records the accuracy of every group
    (``val_group_accuracy``), so a caller can choose the epoch on some groups and score it on
    the others.

    ``patience`` > 0 (with ``(x_val, y_val)``): stop after that many epochs without a better
    validation score than the kept state. The schedule is still the full one, so the epochs
    trained are those of the full run and the kept state is the same unless a later epoch
    would have beaten it; ``details["stopped_at"]`` records the last epoch trained.

    ``deadline`` (a ``time.perf_counter()`` value): raise :class:`~tuner.errors.OverBudget`
    as soon as the run, at the rate its steps so far took, would end after it (checked
    after every optimiser step once half a second of steps has been timed, and at once
    past the deadline; auto's time budget).

    Inputs are already validated: x (N, D) float32 finite, y (N,) indices in [0, C).
    Deterministic for a given ``config.seed`` on CPU; the global torch RNG state is restored.
    """
    device = resolve_device(config.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        return _train(
            config,
            x_train,
            y_train,
            n_classes,
            device,
            x_val=x_val,
            y_val=y_val,
            stop_at=stop_at,
            init=init,
            callback=callback,
            candidate=candidate,
            val_groups=val_groups,
            patience=patience,
            deadline=deadline,
        )


def _train(
    config: HeadConfig,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    n_classes: int,
    device: torch.device,
    *,
    x_val: npt.NDArray[np.float32] | None,
    y_val: npt.NDArray[np.int64] | None,
    stop_at: int | None,
    init: tuple[torch.Tensor, torch.Tensor] | None,
    callback: ProgressCallback | None,
    candidate: int,
    val_groups: npt.NDArray[np.int64] | None = None,
    patience: int = 0,
    deadline: float | None = None,
) -> TrainResult:
    started = time.perf_counter()
    dim = x_train.shape[1]
    # 1. Whole dataset on the device; batches are indexed there.
    xt = torch.as_tensor(x_train, dtype=torch.float32).to(device)  # (N, D)
    yt = torch.as_tensor(y_train, dtype=torch.long).to(device)  # (N,)
    xv = None if x_val is None else torch.as_tensor(x_val, dtype=torch.float32).to(device)
    weight = None
    if config.class_weight == "balanced":
        weight = torch.as_tensor(
            balanced_class_weights(y_train, n_classes), dtype=torch.float32
        ).to(device)  # (C,)

    # 2. Model (seeded init); the classifier may start at the lr solution or an lp run.
    model = build_head(config, dim, n_classes).to(device)
    details: dict[str, Any] = {}
    if config.init_classifier_from_lp and config.method != "lp":
        lp_cfg = dataclasses.replace(config, method="lp", init_classifier_from_lp=False)
        lp = _train(
            lp_cfg,
            x_train,
            y_train,
            n_classes,
            device,
            x_val=x_val,
            y_val=y_val,
            stop_at=None,
            init=None,
            callback=callback,
            candidate=candidate,
            patience=patience,
            deadline=deadline,
        )
        model.classifier.load_state_dict(lp.model.classifier.state_dict())
        details["lp_init"] = {"best_epoch": lp.best_epoch, "val_accuracy": lp.best_val_accuracy}
    if init is not None:
        with torch.no_grad():
            model.classifier.weight.copy_(init[0].to(device))
            model.classifier.bias.copy_(init[1].to(device))

    # 3. Optimiser and per-step cosine schedule (no warm-up); an epoch is one evaluation
    #    round of `passes` passes (more than one on small data: min_steps).
    epochs = config.head_epochs
    passes, steps_per_pass = schedule_shape(xt.shape[0], config)
    total_steps = epochs * passes * steps_per_pass
    last_epoch = epochs if stop_at is None else min(stop_at, epochs)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.head_lr,
        weight_decay=config.head_weight_decay,
        fused=True,  # one kernel for every parameter: ~7x faster steps on CPU, same maths
    )

    def schedule(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(config.seed)
    clock = _StepClock(deadline, last_epoch * passes * steps_per_pass, config.method)

    # 4. Epoch 0 (the initial state) competes when the head starts from a solution.
    history: list[dict[str, Any]] = []
    best_key = (-1.0, -1.0)
    best_epoch = 0
    best_state = _snapshot(model)
    if init is not None and xv is not None and y_val is not None:
        best_key, groups = _evaluate(model, xv, y_val, val_groups)
        history.append(
            _record(config, candidate, 0, {}, best_key, float(schedule(0)) * config.head_lr)
        )
        if groups is not None:
            history[-1]["val_group_accuracy"] = groups

    # 5. Epochs of shuffled mini-batches.
    epoch = 0
    for epoch in range(1, last_epoch + 1):
        model.train()
        sums = {k: torch.zeros((), device=device) for k in LOSS_KEYS}
        n_steps = 0
        for _ in range(passes):
            for idx in batch_indices(xt.shape[0], config.batch_size, generator):
                idx = idx.to(device)
                terms = training_step(model, optimizer, xt[idx], yt[idx], config, weight)
                scheduler.step()
                n_steps += 1
                clock.step()
                for k in LOSS_KEYS:
                    sums[k] += terms[k]
        losses = {k: float(v.item()) / n_steps for k, v in sums.items()}
        if not all(math.isfinite(v) for v in losses.values()):
            logger.warning("%s: non-finite loss at epoch %d: %s", config.method, epoch, losses)

        # 6. Validation; keep the best state (accuracy, ties by macro-F1, then earliest).
        scores = (float("nan"), float("nan"))
        groups = None
        if xv is not None and y_val is not None:
            scores, groups = _evaluate(model, xv, y_val, val_groups)
            if scores > best_key:
                best_key, best_epoch, best_state = scores, epoch, _snapshot(model)
        elif epoch == last_epoch:
            best_epoch, best_state = epoch, _snapshot(model)
        history.append(
            _record(config, candidate, epoch, losses, scores, float(scheduler.get_last_lr()[0]))
        )
        if groups is not None:
            history[-1]["val_group_accuracy"] = groups
        logger.debug(
            "%s[%d] epoch %d/%d %s val=%s", config.method, candidate, epoch, epochs, losses, scores
        )
        # 7. Progress / cancellation.
        report = EpochReport(
            method=config.method,
            candidate=candidate,
            epoch=epoch,
            epochs=last_epoch,
            losses=losses,
            val_accuracy=scores[0],
            val_macro_f1=scores[1],
            elapsed_s=time.perf_counter() - started,
        )
        if callback is not None and callback(report) is False:
            raise TrainingCancelled(f"training cancelled by the callback after epoch {epoch}")
        # 8. Early stop: `patience` epochs without beating the kept state.
        if patience > 0 and xv is not None and epoch - best_epoch >= patience:
            break

    model.load_state_dict(best_state)
    model.eval()
    details["steps"] = {"passes_per_epoch": passes, "steps_per_pass": steps_per_pass}
    if epoch < last_epoch:
        details["stopped_at"] = epoch
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        best_val_accuracy=best_key[0] if best_key[0] >= 0 else float("nan"),
        best_val_macro_f1=best_key[1] if best_key[1] >= 0 else float("nan"),
        device=str(device),
        details=details,
    )


class _StepClock:
    """Projects a run's end from its optimiser steps so far; raises OverBudget past the
    deadline. The first step (allocations, warm-up) only starts the clock, and the rate is
    trusted from ``MIN_STEPS`` further steps and ``MIN_SECONDS`` of them on (a GPU's first
    steps are slower than its steady rate); a run already past the deadline stops at once.
    """

    MIN_STEPS = 4
    MIN_SECONDS = 0.5

    def __init__(self, deadline: float | None, total_steps: int, method: str) -> None:
        self.deadline, self.total, self.method = deadline, total_steps, method
        self.begun = time.perf_counter()
        self.done = 0
        self.first_end = 0.0
        if deadline is not None and self.begun >= deadline:
            self._stop(0.0)

    def step(self) -> None:
        if self.deadline is None:
            return
        now = time.perf_counter()
        self.done += 1
        if self.done == 1:
            self.first_end = now
            return
        measured = now - self.first_end
        per_step = measured / (self.done - 1)
        trusted = self.done - 1 >= self.MIN_STEPS and measured >= self.MIN_SECONDS
        if now > self.deadline or (
            trusted and now + per_step * (self.total - self.done) > self.deadline
        ):
            self._stop(self.first_end - self.begun + per_step * (self.total - 1))

    def _stop(self, projected_s: float) -> None:
        raise OverBudget(
            f"{self.method}: stopped after {self.done} of {self.total} optimiser steps; at "
            f"their rate the run would take {projected_s:.1f} s and end past the deadline",
            projected_s,
            self.done,
            self.total,
        )


def _snapshot(model: HeadModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _record(
    config: HeadConfig, candidate: int, epoch: int, losses: dict[str, float], scores: Any, lr: float
) -> dict[str, Any]:
    acc, f1 = (None if math.isnan(v) else v for v in scores)
    return {"epoch": epoch, "method": config.method, "candidate": candidate, "losses": losses,
            "val_accuracy": acc, "val_macro_f1": f1, "lr": lr}  # fmt: skip
