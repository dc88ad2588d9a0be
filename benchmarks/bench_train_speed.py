"""Head fit time vs scikit-learn LogisticRegression on the same features, with accuracy.

    python benchmarks/bench_train_speed.py [--domains nyt tweets] [--seeds 0 1]
        [--synthetic-rows 50000 --synthetic-dim 1536] [--methods lp robust]

Per dataset, in one process and interleaved (LogisticRegression, then each head with
early stopping off = ``patience=0``, the behaviour before issue 15, then with the default
``patience``): fit seconds, the ratio to LogisticRegression's fit in the same round, test
accuracy, the kept epoch and where training stopped. Real data: MiniLM VADER features from
the benchmarks' embedding cache (``accuracy_data``), the seeded 65 / 10 / 25 split; the heads
select on the 10 % validation split. Synthetic: ``--synthetic-rows`` x ``--synthetic-dim``
Gaussian classes (10), 80 / 10 / 10 %.

Threads: torch and the BLAS numpy / scikit-learn use are limited to the same count
(``BENCH_THREADS``, default 1) so that both sides get the same cores. One warm-up fit of each
kind runs first (imports and first-call costs are not fit time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

#: name -> NMTuneClassifier arguments (the robust preset is the default one).
METHODS: dict[str, dict[str, Any]] = {
    "lp": {"method": "lp"},
    "mlp": {"method": "mlp"},
    "paper-code": {"method": "nmtune", "preset": "paper-code"},
    "robust": {"method": "nmtune", "preset": "robust"},
}


@dataclass
class Data:
    name: str
    x_tr: np.ndarray
    y_tr: np.ndarray
    x_va: np.ndarray
    y_va: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray


def vader(domain: str, seed: int) -> Data:
    """MiniLM VADER-<domain> features through the benchmarks' SQL embedding cache."""
    from accuracy_data import DEFAULT_DATA, MINILM, CachedEmbedder, load_tasks, split_indices

    from nmtune.adapters import build_backend

    t = load_tasks(DEFAULT_DATA, [f"vader-{domain}"])[f"vader-{domain}"]
    x = CachedEmbedder().embed(build_backend(MINILM), t.texts, f"vader-{domain}")
    y = np.asarray(t.labels)
    tr, va, te = split_indices(y, seed)
    return Data(f"VADER-{domain} seed {seed}", x[tr], y[tr], x[va], y[va], x[te], y[te])


def synthetic(n: int, dim: int, seed: int, classes: int = 10) -> Data:
    """Gaussian classes, unit noise, means about 2 noise standard deviations apart (they
    overlap: accuracy well below 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    means = rng.standard_normal((classes, dim)).astype(np.float32) * (1.5 / np.sqrt(dim))
    x = rng.standard_normal((n, dim), dtype=np.float32) + means[y]
    a, b = int(0.8 * n), int(0.9 * n)
    return Data(f"synthetic {n:,} x {dim} seed {seed}", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def sklearn_lr(d: Data) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt, m = timed(lambda: LogisticRegression(max_iter=100).fit(d.x_tr, d.y_tr))
    return dt, float(m.score(d.x_te, d.y_te))


def head(d: Data, kw: dict[str, Any], seed: int, patience: int | None) -> dict[str, Any]:
    from nmtune.tuner import NMTuneClassifier

    extra = {} if patience is None else {"patience": patience}
    est = NMTuneClassifier(random_state=seed, device="cpu", **kw, **extra)
    dt, _ = timed(lambda: est.fit(d.x_tr, d.y_tr, X_val=d.x_va, y_val=d.y_va))
    steps = est.selection_.get("stopped_at")
    return {
        "s": dt,
        "acc": float(est.score(d.x_te, d.y_te)),
        "epoch": est.best_epoch_,
        "stopped": steps if steps is not None else est.config_.head_epochs,
    }


def run(
    datasets: list[Data], methods: list[str], seed_of: dict[str, int], patience: int | None
) -> list[str]:
    """Markdown rows: per dataset, LogisticRegression then each method before / after."""
    lines = [
        "| data | method | before s (x LR) | after s (x LR) | speed-up | before acc | after acc "
        "| kept epoch before / after | epochs trained after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in datasets:
        seed = seed_of[d.name]
        lr_s, lr_acc = sklearn_lr(d)
        lines.append(f"| {d.name} | sklearn LogisticRegression | {lr_s:.2f} | | | {lr_acc:.4f} |")
        print(lines[-1], flush=True)
        for m in methods:
            lr_s2, _ = sklearn_lr(d)  # re-measured next to each head: load changes
            ref = 0.5 * (lr_s + lr_s2)
            before = head(d, METHODS[m], seed, 0)
            after = head(d, METHODS[m], seed, patience)
            lines.append(
                f"| {d.name} | {m} | {before['s']:.2f} ({before['s'] / ref:.1f}x) | "
                f"{after['s']:.2f} (**{after['s'] / ref:.1f}x**) | "
                f"{before['s'] / after['s']:.2f}x | {before['acc']:.4f} | {after['acc']:.4f} | "
                f"{before['epoch']} / {after['epoch']} | {after['stopped']} |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--domains", nargs="*", default=["nyt"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--methods", nargs="*", default=["lp", "robust"], choices=sorted(METHODS))
    ap.add_argument("--synthetic-rows", type=int, default=0, help="0 = no synthetic set")
    ap.add_argument("--synthetic-dim", type=int, default=1536)
    ap.add_argument("--synthetic-methods", nargs="*", default=None, choices=sorted(METHODS))
    ap.add_argument(
        "--patience", type=int, default=None, help="'after' early stopping (default: config's)"
    )
    a = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    threads = int(os.environ.get("BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        warm = synthetic(400, 32, 0, classes=2)
        sklearn_lr(warm)
        for m in sorted(set(a.methods) | set(a.synthetic_methods or [])):
            head(warm, METHODS[m], 0, None)
        datasets: list[Data] = []
        seed_of: dict[str, int] = {}
        for dom in a.domains:
            for s in a.seeds:
                datasets.append(vader(dom, s))
                seed_of[datasets[-1].name] = s
        lines = run(datasets, a.methods, seed_of, a.patience)
        if a.synthetic_rows:
            d = synthetic(a.synthetic_rows, a.synthetic_dim, 0)
            seed_of[d.name] = 0
            lines += run([d], a.synthetic_methods or a.methods, seed_of, a.patience)[2:]
    print(f"\ntorch threads {torch.get_num_threads()}, BLAS threads limited to {threads}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
