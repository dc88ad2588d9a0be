"""auto with and without its time budget on large, wide features (issue 15: heads in seconds).

    python benchmarks/bench_auto_budget.py [--rows 6000] [--dim 1536] [--budgets 300 0]
        [--classes 10] [--seed 0]

On a CPU, auto's 4x-wide paper-code candidate on 1,536-d vectors takes most of the fit (its
steps are ~0.2 s each here); ``auto_time_budget_s`` stops a candidate after the first once
its training is projected to end past the budget. This runs ``method="auto"`` on the same
synthetic features once per budget (0 = no bound: every candidate runs to the end), in one
process, in turn, and prints per run: wall seconds, the pick, test accuracy, and every
candidate's score or why it stopped. Features: ``--rows`` x ``--dim`` Gaussian classes,
80 / 10 / 10 % train / validation / test (above auto_cv_max_rows = 4,000 rows auto selects on
the validation split; below it by CV).

Threads: torch and BLAS limited to ``BENCH_THREADS`` (default 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_train_speed import synthetic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--dim", type=int, default=1536)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", type=float, nargs="+", default=[300.0, 0.0])
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from nmtune.tuner import NMTuneClassifier

    threads = int(os.environ.get("BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    d = synthetic(args.rows, args.dim, args.seed, args.classes)
    print(f"# auto time budget, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{threads} thread(s); data: {d.name}, {args.classes} classes, train {d.y_tr.size} / "
        f"validation {d.y_va.size} / test {d.y_te.size}"
    )
    with threadpool_limits(limits=threads):
        # warm-up: imports and first-call costs are not fit time
        NMTuneClassifier(method="lr", device="cpu").fit(d.x_tr[:200], d.y_tr[:200])
        for budget in args.budgets:
            est = NMTuneClassifier(
                method="auto", device="cpu", random_state=args.seed, auto_time_budget_s=budget
            )
            t0 = time.perf_counter()
            est.fit(d.x_tr, d.y_tr, d.x_va, d.y_va)
            wall = time.perf_counter() - t0
            acc = float(est.score(d.x_te, d.y_te))
            label = f"{budget:g} s" if budget > 0 else "none"
            print(
                f"\nbudget {label}: wall {wall:.1f} s, signal {est.selection_['signal']}, "
                f"picked {est.method_}, test accuracy {acc:.4f}"
            )
            for c in est.candidates_:
                what = (
                    f"over budget: {c['over_budget']}"
                    if c.get("over_budget")
                    else f"skipped: {c['skipped']}"
                    if c.get("skipped")
                    else f"raced out: {c['raced_out']}"
                    if c.get("raced_out")
                    else f"score {c.get('val_accuracy')}"
                )
                sel = " (picked)" if c.get("selected") else ""
                print(f"  #{c['index']} {c['method']} {c.get('preset', '')}{sel}: {what}")


if __name__ == "__main__":
    main()
