"""The training loop shared by every method (lp, mlp, nmtune; auto calls it per candidate).

Reads top to bottom: device -> seeded init -> optimiser + cosine schedule -> epochs of
shuffled mini-batches (last incomplete batch dropped) -> validation after each epoch -> best
state kept (validation only) -> progress callback (may cancel).
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
import torch.nn.functional as F

from tuner.config import HeadConfig
from tuner.errors import ConfigError, TrainingCancelled
from tuner.heads import HeadModule, build_head
from tuner.losses import cov_loss, cov_svd_losses, mse_consistency_loss, svd_loss
from tuner.metrics import index_scores

__all__ = [
    "EpochReport",
    "ProgressCallback",
    "TrainResult",
    "balanced_class_weights",
    "batch_indices",
    "compute_loss",
    "predict_logits",
    "resolve_device",
    "stratified_split",
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
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without CUDA is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def stratified_split(
    y: npt.NDArray[np.int64], val_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Seeded stratified (train_idx, val_idx); every class keeps >= 1 training example.

    Each class with n_c >= 2 examples gives round(val_fraction * n_c) of them (at least 1,
    at most n_c - 1) to validation. Both index arrays are sorted.
    """
    rng = np.random.default_rng(seed)
    train: list[npt.NDArray[np.int64]] = []
    val: list[npt.NDArray[np.int64]] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c).astype(np.int64)
        idx = idx[rng.permutation(idx.size)]
        n_val = 0 if idx.size < 2 else min(idx.size - 1, max(1, round(val_fraction * idx.size)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def balanced_class_weights(y: npt.NDArray[np.int64], n_classes: int) -> npt.NDArray[np.float64]:
    """w_c = n / (C * n_c) (sklearn's 'balanced'); classes absent from y get weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return np.divide(
        y.size, n_classes * counts, out=np.zeros(n_classes, dtype=np.float64), where=counts > 0
    )


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled mini-batches of row indices; the last incomplete batch is dropped.

    If ``n < batch_size`` there is one batch holding every row.
    """
    perm = torch.randperm(n, generator=generator)
    if n < batch_size:
        return [perm]
    n_batches = n // batch_size
    return list(perm[: n_batches * batch_size].view(n_batches, batch_size))


def compute_loss(
    logits: torch.Tensor,
    z: torch.Tensor,
    f: torch.Tensor,
    y: torch.Tensor,
    config: HeadConfig,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = CE + w_mse L_mse + w_cov L_cov + w_svd L_svd (method.md §3).

    Terms whose weight is 0 are not computed (reported as 0).

    Parameters
    ----------
    logits : (B, C); z : (B, D) adapted features; f : (B, D) clean input features;
    y : (B,) class indices.

    Returns
    -------
    total, terms
        ``terms`` holds detached ce, mse, cov, svd, total.
    """
    ce = F.cross_entropy(logits.float(), y, weight=class_weight)
    total = ce
    zero = torch.zeros((), device=logits.device)
    terms = {"ce": ce, "mse": zero, "cov": zero, "svd": zero}
    if config.w_mse > 0:
        terms["mse"] = mse_consistency_loss(z, f)
        total = total + config.w_mse * terms["mse"]
    if config.w_cov > 0 and config.w_svd > 0:
        terms["cov"], terms["svd"] = cov_svd_losses(z, config.svd_top_k)  # one shared Gram
    elif config.w_cov > 0:
        terms["cov"] = cov_loss(z)
    elif config.w_svd > 0:
        terms["svd"] = svd_loss(z, config.svd_top_k)
    if config.w_cov > 0:
        total = total + config.w_cov * terms["cov"]
    if config.w_svd > 0:
        total = total + config.w_svd * terms["svd"]
    terms["total"] = total
    return total, {k: v.detach() for k, v in terms.items()}


def _augment(f: torch.Tensor, config: HeadConfig) -> torch.Tensor:
    """Feature-space second view: dropout then Gaussian noise (absolute std) on f (B, D)."""
    out = f
    if config.feature_dropout > 0:
        out = F.dropout(out, p=config.feature_dropout, training=True)
    if config.feature_noise > 0:
        out = out + config.feature_noise * torch.randn_like(out)
    return out


def training_step(
    model: HeadModule,
    optimizer: torch.optim.Optimizer,
    f: torch.Tensor,
    y: torch.Tensor,
    config: HeadConfig,
    class_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One forward + backward + optimiser step on a batch f (B, D), y (B,)."""
    logits, z = model(_augment(f, config))  # (B, C), (B, D)
    total, terms = compute_loss(logits, z, f, y, config, class_weight)
    optimizer.zero_grad(set_to_none=True)
    total.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return terms


@torch.no_grad()
@torch.no_grad()
def predict_logits(model: HeadModule, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Eval-mode logits (N, C) in chunks; restores the module's previous mode."""
    was_training = model.training
    model.eval()
    out = [model(x[i : i + chunk])[0] for i in range(0, x.shape[0], chunk)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, model.classifier.out_features))


def _evaluate(model: HeadModule, x: torch.Tensor, y: npt.NDArray[np.int64]) -> tuple[float, float]:
    pred = predict_logits(model, x).argmax(dim=1).cpu().numpy()
    return index_scores(y, pred, model.classifier.out_features)


def train_head(
    config: HeadConfig,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_val: npt.NDArray[np.float32],
    y_val: npt.NDArray[np.int64],
    n_classes: int,
    *,
    callback: ProgressCallback | None = None,
    candidate: int = 0,
) -> TrainResult:
    """Train one head of ``config.method`` ('lp', 'mlp', 'nmtune'); keep the best val epoch.

    Inputs are already validated: x (N, D) float32 finite, y (N,) indices in [0, C).
    Deterministic for a given ``config.seed`` on CPU; the global torch RNG state is restored.
    """
    device = resolve_device(config.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        return _train(
            config, x_train, y_train, x_val, y_val, n_classes, device, callback, candidate
        )


def _train(
    config: HeadConfig,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_val: npt.NDArray[np.float32],
    y_val: npt.NDArray[np.int64],
    n_classes: int,
    device: torch.device,
    callback: ProgressCallback | None,
    candidate: int,
) -> TrainResult:
    started = time.perf_counter()
    dim = x_train.shape[1]
    # 1. Whole dataset on the device; batches are indexed there.
    xt = torch.as_tensor(x_train, dtype=torch.float32).to(device)  # (N, D)
    yt = torch.as_tensor(y_train, dtype=torch.long).to(device)  # (N,)
    xv = torch.as_tensor(x_val, dtype=torch.float32).to(device)  # (Nv, D)
    weight = None
    if config.class_weight == "balanced":
        weight = torch.as_tensor(
            balanced_class_weights(y_train, n_classes), dtype=torch.float32
        ).to(device)  # (C,)

    # 2. Model (seeded init); optional LP-then-tune classifier initialisation.
    model = build_head(config, dim, n_classes).to(device)
    extra: dict[str, Any] = {}
    if config.init_classifier_from_lp and config.method != "lp":
        lp_cfg = dataclasses.replace(config, method="lp", init_classifier_from_lp=False)
        lp = _train(lp_cfg, x_train, y_train, x_val, y_val, n_classes, device, callback, candidate)
        model.classifier.load_state_dict(lp.model.classifier.state_dict())
        extra["lp_init"] = {"best_epoch": lp.best_epoch, "val_accuracy": lp.best_val_accuracy}

    # 3. Optimiser and per-iteration cosine schedule (no warm-up).
    epochs = config.head_epochs
    steps_per_epoch = 1 if xt.shape[0] < config.batch_size else xt.shape[0] // config.batch_size
    total_steps = max(1, epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.head_lr, weight_decay=config.head_weight_decay
    )

    def schedule(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(config.seed)

    # 4. Epochs.
    history: list[dict[str, Any]] = []
    best_key = (-1.0, -1.0)
    best_epoch = 0
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, epochs + 1):
        model.train()
        sums = {k: torch.zeros((), device=device) for k in LOSS_KEYS}
        batches = batch_indices(xt.shape[0], config.batch_size, generator)
        for idx in batches:
            idx = idx.to(device)
            terms = training_step(model, optimizer, xt[idx], yt[idx], config, weight)
            scheduler.step()
            for k in LOSS_KEYS:
                sums[k] += terms[k]
        losses = {k: float(v.item()) / len(batches) for k, v in sums.items()}

        # 5. Validation; keep the best state (accuracy, ties by macro-F1, then earliest).
        val_acc, val_f1 = _evaluate(model, xv, y_val)
        if (val_acc, val_f1) > best_key:
            best_key, best_epoch = (val_acc, val_f1), epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        report = EpochReport(
            method=config.method,
            candidate=candidate,
            epoch=epoch,
            epochs=epochs,
            losses=losses,
            val_accuracy=val_acc,
            val_macro_f1=val_f1,
            elapsed_s=time.perf_counter() - started,
        )
        history.append(
            {
                "epoch": epoch,
                "method": config.method,
                "candidate": candidate,
                "losses": losses,
                "val_accuracy": val_acc,
                "val_macro_f1": val_f1,
                "lr": float(scheduler.get_last_lr()[0]),
            }
        )
        logger.debug(
            "%s[%d] epoch %d/%d %s val_acc=%.4f",
            config.method,
            candidate,
            epoch,
            epochs,
            losses,
            val_acc,
        )
        if not all(math.isfinite(v) for v in losses.values()):
            logger.warning("%s: non-finite loss at epoch %d: %s", config.method, epoch, losses)
        # 6. Progress / cancellation.
        if callback is not None and callback(report) is False:
            raise TrainingCancelled(f"training cancelled by the callback after epoch {epoch}")

    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        best_val_accuracy=best_key[0],
        best_val_macro_f1=best_key[1],
        device=str(device),
        extra=extra,
    )
