"""Selection on labelled target-domain validation data vs LogisticRegressionCV, out of domain.

    python benchmarks/bench_target_val.py                       # default pairs, 3 seeds
    python benchmarks/bench_target_val.py --pairs wordnet:examples --per-class 128 --seeds 0 1

A user who can label a few examples of the domain the head will serve can pass them as
``validation:ood:<name>`` (tuner: ``X_target_val``); selection (auto's candidate, epochs, C)
then uses them and only them. This benchmark measures what that buys out of domain, against
scikit-learn's LogisticRegressionCV trained on the source domain (C by 5-fold CV on it), on the
same rows, paired over seeds.

For each pair ``task:target`` and seed: the source task is split 65 / 10 / 25 as in the
learning curve (``--per-class`` rows per class of the 75 % pool, or ``full``); the target
domain's rows (WordNet: usage examples of synsets not used in the source rows) are dealt into a
labelled target-validation part of ``--target-per-class`` rows per class (seeded) and the
target-test rest. Heads: LRCV (source only), ``auto`` without and with the target validation,
``lr`` (C chosen on the target validation), ``nmtune`` robust and paper-code (epoch chosen on
the target validation). Reported: target-test accuracy (OOD) and source test accuracy (ID).
Each fit is single-threaded; ``--jobs`` units run side by side.
Outputs benchmarks/results/<tag>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_data import DEFAULT_DATA, split_indices
from bench_learning_curve import DATA, lrcv, prepare  # the same embeddings and baseline

RESULTS = Path(__file__).resolve().parent / "results"
PAIRS = ["vader-movies:nyt", "vader-movies:tweets", "vader-tweets:amazon", "wordnet:examples"]
METHODS = ["lrcv", "auto", "auto+target", "lr+target", "robust+target", "paper-code+target"]


def per_class(y: np.ndarray, idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rows per class of ``idx`` (all of a class that has fewer), seeded."""
    out = []
    for c in np.unique(y[idx]):
        rows = idx[y[idx] == c]
        out.append(rows[rng.permutation(rows.size)][:k])
    return np.sort(np.concatenate(out))


def make_unit(task: str, target: str, seed: int, size: str, t_per_class: int) -> dict[str, Any]:
    d = DATA[task]
    y = d["y"]
    tr, va, te = split_indices(y, seed)
    pool = np.sort(np.concatenate([tr, va]))
    rng = np.random.default_rng(10_000 + seed)
    src = pool if size == "full" else per_class(y, pool, int(size), rng)
    xo, yo = d["ood"][target]
    mask = np.isin(yo, np.unique(y[src]))
    if target in d["groups"]:  # WordNet: only examples of synsets never used as source rows
        seen = set(d["groups"]["_id_rows"][np.concatenate([tr, va])].tolist())
        mask &= np.array([g not in seen for g in d["groups"][target].tolist()])
    t_idx = np.flatnonzero(mask)
    t_rng = np.random.default_rng(20_000 + seed)
    t_val = per_class(yo, t_idx, t_per_class, t_rng)
    t_test = np.setdiff1d(t_idx, t_val)
    return {
        "x_src": d["X"][src],
        "y_src": y[src],
        "x_id": d["X"][te],
        "y_id": y[te],
        "x_tv": xo[t_val],
        "y_tv": yo[t_val],
        "x_tt": xo[t_test],
        "y_tt": yo[t_test],
    }


def run_unit(unit: tuple[str, str, int, str, int, str]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nmtune.tuner import NMTuneClassifier

    task, target, seed, size, t_per_class, method = unit
    u = make_unit(task, target, seed, size, t_per_class)
    t0 = time.perf_counter()
    picked = method
    if method == "lrcv":
        clf: Any = lrcv(u["x_src"], u["y_src"], seed)
    else:
        name, _, with_target = method.partition("+")
        kw: dict[str, Any] = {"random_state": seed}
        if name in ("robust", "paper-code"):
            kw.update(method="nmtune", preset=name)
        else:
            kw["method"] = name
        clf = NMTuneClassifier(**kw)
        if with_target:
            clf.fit(u["x_src"], u["y_src"], X_target_val=u["x_tv"], y_target_val=u["y_tv"])
        else:
            clf.fit(u["x_src"], u["y_src"])
        if name == "auto":
            picked = clf.method_ + (f"/{clf.config_.preset}" if clf.method_ == "nmtune" else "")
    fit_s = time.perf_counter() - t0

    def acc(xs: np.ndarray, ys: np.ndarray) -> float:
        return float((np.asarray(clf.predict(xs)) == ys).mean() * 100)

    return {
        "pair": f"{task}:{target}",
        "seed": seed,
        "size": size,
        "method": method,
        "picked": picked,
        "n_src": int(u["y_src"].size),
        "n_target_val": int(u["y_tv"].size),
        "n_target_test": int(u["y_tt"].size),
        "id": acc(u["x_id"], u["y_id"]),
        "ood": acc(u["x_tt"], u["y_tt"]),
        "fit_s": round(fit_s, 2),
    }


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        "# Target-domain validation vs LogisticRegressionCV (MiniLM)",
        "",
        f"Generated {meta['when']} on {meta['host']} ({meta['cpus']} CPUs), `{meta['cmd']}`.",
        "Accuracy % (mean over seeds). OOD = the target domain's test rows (never used for "
        "selection); ID = the source task's test split. Δ = paired mean difference to LRCV "
        "(trained on the source rows only) over seeds, min over seeds in brackets.",
        "",
        "| pair | n source / target val / target test | method | ID | OOD | ΔID (min) | "
        "ΔOOD (min) | fit s | picked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    for p in pairs:
        base = {r["seed"]: r for r in rows if r["pair"] == p and r["method"] == "lrcv"}
        for m in METHODS:
            sel = [r for r in rows if r["pair"] == p and r["method"] == m and r["seed"] in base]
            if not sel:
                continue
            did = [r["id"] - base[r["seed"]]["id"] for r in sel]
            dood = [r["ood"] - base[r["seed"]]["ood"] for r in sel]
            picks = Counter(r["picked"] for r in sel)
            r0 = sel[0]
            sizes = f"{r0['n_src']} / {r0['n_target_val']} / {r0['n_target_test']}"
            out.append(
                f"| {p} | {sizes} | {m} | {np.mean([r['id'] for r in sel]):.1f} | "
                f"{np.mean([r['ood'] for r in sel]):.1f} | "
                + ("-" if m == "lrcv" else f"{np.mean(did):+.1f} ({min(did):+.1f})")
                + " | "
                + ("-" if m == "lrcv" else f"{np.mean(dood):+.1f} ({min(dood):+.1f})")
                + f" | {np.median([r['fit_s'] for r in sel]):.1f} | "
                + ", ".join(f"{k} x{v}" for k, v in picks.items())
                + " |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pairs", nargs="+", default=PAIRS, help="task:target-domain ...")
    ap.add_argument("--per-class", default="128", help="source rows per class, or full")
    ap.add_argument("--target-per-class", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tag", default="target_val")
    a = ap.parse_args(argv)
    pairs = [tuple(p.split(":", 1)) for p in a.pairs]
    prepare(a.data_dir, sorted({t for t, _ in pairs}))
    units = [
        (t, o, s, a.per_class, a.target_per_class, m)
        for t, o in pairs
        for s in a.seeds
        for m in a.methods
    ]
    rows: list[dict[str, Any]] = []
    with mp.get_context("fork").Pool(a.jobs) as pool:
        for r in pool.imap_unordered(run_unit, units):
            rows.append(r)
            print(
                f"{r['pair']} s{r['seed']} {r['method']:18s} ID {r['id']:5.1f} OOD {r['ood']:5.1f}"
                f" {r['fit_s']:6.1f}s {r['picked']}",
                flush=True,
            )
    rows.sort(key=lambda r: (r["pair"], r["method"], r["seed"]))
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": mp.cpu_count(),
        "cmd": "python benchmarks/bench_target_val.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{a.tag}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    text = report(rows, meta)
    (RESULTS / f"{a.tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
