"""Step time of mlp vs nmtune (forward + backward + AdamW step), B=64, D in {384, 1536}.

Runs the tuner's own ``training_step`` for ``mlp`` and ``nmtune`` (paper-code preset), plus a
naive nmtune (full D x D covariance + torch.linalg.svdvals) for contrast. The variants are
interleaved within each repetition; the median over repetitions is reported.

    python benchmarks/bench_tuner_step.py [--reps 30] [--dims 384 1536] [--batch 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from nmtune.tuner.config import HeadConfig, resolve_config
from nmtune.tuner.heads import HeadModule, build_head
from nmtune.tuner.training import training_step


def naive_step(
    model: HeadModule,
    opt: torch.optim.Optimizer,
    f: torch.Tensor,
    y: torch.Tensor,
    cfg: HeadConfig,
) -> None:
    """nmtune step with the textbook regularisers: D x D covariance and full svdvals."""
    logits, z = model(f)  # (B, C), (B, D)
    b, d = z.shape
    ce = F.cross_entropy(logits, y)
    mse = F.mse_loss(F.normalize(z, dim=1), F.normalize(f.detach(), dim=1))
    zc = z - z.mean(0)
    cov = zc.T @ zc / (b - 1)  # (D, D)
    off = cov - torch.diag(torch.diagonal(cov))
    lcov = (off**2).sum() / d
    s = torch.linalg.svdvals(z)
    p = s / s.sum()
    lsvd = -p[: cfg.svd_top_k].mean()
    loss = ce + cfg.w_mse * mse + cfg.w_cov * lcov + cfg.w_svd * lsvd
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()


def make(
    method: str, dim: int, n_classes: int, seed: int = 0
) -> tuple[HeadModule, torch.optim.Optimizer, HeadConfig]:
    cfg = resolve_config(method, "paper-code", {"seed": seed, "device": "cpu"})
    torch.manual_seed(seed)
    model = build_head(cfg, dim, n_classes).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return model, opt, cfg


def bench_dim(dim: int, batch: int, n_classes: int, reps: int, warmup: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(dim)
    f = torch.randn(batch, dim, generator=g) / dim**0.5  # (B, D), embedding-like scale
    y = torch.randint(0, n_classes, (batch,), generator=g)
    variants: dict[str, Callable[[], None]] = {}
    for name in ("mlp", "nmtune"):
        model, opt, cfg = make(name, dim, n_classes)
        variants[name] = lambda m=model, o=opt, c=cfg: training_step(m, o, f, y, c) and None
    model, opt, cfg = make("nmtune", dim, n_classes)
    variants["naive"] = lambda m=model, o=opt, c=cfg: naive_step(m, o, f, y, c)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(warmup + reps):
        for name, step in variants.items():  # interleaved
            t0 = time.perf_counter()
            step()
            dt = time.perf_counter() - t0
            if rep >= warmup:
                times[name].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dims", type=int, nargs="+", default=[384, 1536])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print(f"B={args.batch} C={args.classes} reps={args.reps} (median, interleaved), device cpu")
    cols = ("mlp ms", "nmtune ms", "naive ms", "nmt/mlp", "naive/mlp")
    print(f"{'D':>6} " + " ".join(f"{c:>10}" for c in cols))
    for dim in args.dims:
        t = bench_dim(dim, args.batch, args.classes, args.reps, args.warmup)
        print(
            f"{dim:>6} {t['mlp'] * 1e3:>10.2f} {t['nmtune'] * 1e3:>10.2f} {t['naive'] * 1e3:>10.2f}"
            f" {t['nmtune'] / t['mlp']:>10.3f} {t['naive'] / t['mlp']:>10.3f}"
        )


if __name__ == "__main__":
    main()
