"""GPU benchmark: train heads on 100k x 1536 synthetic features, report time per head and
throughput (training rows x epochs per second), with scikit-learn LogisticRegression on the
same features (CPU) as the reference, side by side in one run.

    python benchmarks/bench_gpu.py                     # CUDA if present, 100k x 1536, a few minutes
    python benchmarks/bench_gpu.py --small --device cpu  # smoke size (tests use it)

Synthetic data: ``--classes`` Gaussian classes (overlapping: accuracy is informative, not
100 %), 90 / 10 % train / validation, float32. Heads: lr (fixed C, no CV, for a time per fit),
lr with its 5-fold CV, lp, mlp, nmtune robust, auto (default grid and time budget; the row
names its pick and any candidate over budget); each fit once, in turn, on the device, with
``torch.cuda.synchronize`` before the clock stops. Prints a Markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: key (for --heads), label, estimator parameters
HEADS: list[tuple[str, str, dict[str, Any]]] = [
    ("lr", "lr (C=1, one fit)", {"method": "lr", "lr_c": 1.0}),
    ("lr-cv", "lr (5-fold CV of C)", {"method": "lr"}),
    ("lp", "lp", {"method": "lp"}),
    ("mlp", "mlp", {"method": "mlp"}),
    ("nmtune", "nmtune robust", {"method": "nmtune", "preset": "robust"}),
    # the default grid under its default time budget (300 s): what a user's auto head costs
    ("auto", "auto", {"method": "auto"}),
]


def synthetic(rows: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32) / np.sqrt(dim) * 6
    y = rng.integers(0, classes, rows)
    x = np.empty((rows, dim), dtype=np.float32)
    for s in range(0, rows, 50_000):
        e = min(s + 50_000, rows)
        x[s:e] = centres[y[s:e]] + rng.standard_normal((e - s, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if any)")
    ap.add_argument(
        "--small", action="store_true", help="2,000 x 64, 3 epochs, min_steps 10: a smoke run"
    )
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the torch heads")
    ap.add_argument("--no-sklearn", action="store_true", help="skip the CPU reference")
    ap.add_argument(
        "--heads", default=None, help="comma-separated subset of: lr,lr-cv,lp,mlp,nmtune"
    )
    ap.add_argument("--min-steps", type=int, default=None, help="min_steps of the torch heads")
    a = ap.parse_args()
    import torch

    from nmtune.tuner import NMTuneClassifier

    rows, dim = (2000, 64) if a.small else (a.rows, a.dim)
    epochs = a.epochs or (3 if a.small else None)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    x, y = synthetic(rows, dim, a.classes)
    n_tr = int(rows * 0.9)
    x_tr, y_tr, x_va, y_va = x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:]
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(
        f"# GPU benchmark: {rows:,} x {dim} synthetic, {a.classes} classes, device {device} "
        f"({gpu}); torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"{platform.platform()}, {os.cpu_count()} CPUs"
    )
    print()
    print("| head | fit s | train rows x epochs / s | epochs run | val accuracy | / sklearn LR |")
    print("|---|---|---|---|---|---|")
    results: list[dict[str, Any]] = []
    t_ref = None
    if not a.no_sklearn:
        from sklearn.linear_model import LogisticRegression

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegression(max_iter=100).fit(x_tr, y_tr)
        t_ref = time.perf_counter() - t0
        acc = float((ref.predict(x_va) == y_va).mean())
        print(f"| sklearn LogisticRegression (CPU) | {t_ref:.2f} | - | - | {acc:.4f} | 1.00 |")
        results.append({"head": "sklearn", "fit_s": t_ref, "val_accuracy": acc})
    wanted = set(a.heads.split(",")) if a.heads else None
    for key, name, kw in HEADS:
        if wanted and key not in wanted:
            continue
        params = dict(kw)
        if params["method"] != "lr":
            if epochs:
                params["lp_epochs" if params["method"] == "lp" else "epochs"] = epochs
            min_steps = a.min_steps if a.min_steps is not None else (10 if a.small else None)
            if min_steps is not None:
                params["min_steps"] = min_steps
        clf = NMTuneClassifier(random_state=0, device=device, **params)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        clf.fit(x_tr, y_tr, X_val=x_va, y_val=y_va)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        acc = float((np.asarray(clf.predict(x_va)) == y_va).mean())
        ran = len(getattr(clf, "history_", []) or []) or None
        thr = f"{n_tr * ran / dt:,.0f}" if ran else "-"
        ratio = f"{dt / t_ref:.2f}" if t_ref else "-"
        if params["method"] == "auto":  # which head it kept, and any candidate over budget
            late = [c["method"] for c in clf.candidates_ if c.get("over_budget")]
            name = f"auto -> {clf.method_}" + (f" ({', '.join(late)} over budget)" if late else "")
        print(f"| {name} | {dt:.2f} | {thr} | {ran or '-'} | {acc:.4f} | {ratio} |")
        results.append({"head": name, "fit_s": dt, "epochs": ran, "val_accuracy": acc})
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    print()
    print(f"Peak CUDA memory allocated: {peak:,.0f} MiB" if peak else "CPU run.")
    print(json.dumps({"rows": rows, "dim": dim, "device": device, "gpu": gpu, "results": results}))


if __name__ == "__main__":
    main()
