"""Bring-your-own vectors at scale: a 1M x 384 vector dataset created, a head trained and
evaluated, with wall time per phase and peak RSS.

    python benchmarks/bench_byo.py [--rows 1000000] [--dim 384] [--method lp] [--db sqlite|URL]

The phases are the service's own code paths, in one process: the .npy file and the JSONL
records file are parsed as POST /v1/datasets/vectors/upload parses them (parse_npy,
parse_meta), checked (validate_table) and stored (datasets.repository.create_vectors); then
what the train job does: load_examples + load_vectors (no backbone call), fit, evaluate
(metrics per split + spectra). Synthetic data: 10 Gaussian classes, 90 / 5 / 5 % train /
validation / test. Prints a Markdown table (and the JSON line at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(rows: int, dim: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    y = rng.integers(0, classes, rows)
    x = np.empty((rows, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, rows, step):  # in blocks: no float64 temporary of the whole matrix
        e = min(s + step, rows)
        x[s:e] = centres[y[s:e]] * 0.35 + rng.standard_normal((e - s, dim), dtype=np.float32)
    return x, y


def run(
    rows: int, dim: int, method: str, db_url: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    from nmtune.service.auth.service import get_or_create_tenant
    from nmtune.service.datasets import repository as ds_repo
    from nmtune.service.datasets.service import load_examples, load_vectors
    from nmtune.service.datasets.vectors import VectorTable, parse_meta, parse_npy, validate_table
    from nmtune.service.db.migrate import upgrade
    from nmtune.service.db.session import Database
    from nmtune.service.heads.training import evaluate
    from nmtune.service.settings import Settings
    from nmtune.tuner import NMTuneClassifier

    out: dict[str, Any] = {"rows": rows, "dim": dim, "method": method, "overrides": overrides}
    out["rss_start_mib"] = round(rss_mib())
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        url = db_url or f"sqlite:///{d}/byo.db"
        upgrade(url)
        db = Database(url)
        with db.session() as s:
            tenant = get_or_create_tenant(s, f"byo-{os.getpid()}").id
        x, y = synthetic(rows, dim, 10, 0)
        u = np.random.default_rng(1).random(rows)
        splits = np.where(u < 0.9, "train", np.where(u < 0.95, "validation", "test"))
        npy = Path(d) / "v.npy"
        np.save(npy, x)
        meta = "".join(
            f'{{"label":{int(lab)},"split":"{sp}"}}\n' for lab, sp in zip(y, splits, strict=True)
        ).encode()
        del x
        out["rss_after_files_mib"] = round(rss_mib())

        t0 = time.perf_counter()
        with open(npy, "rb") as f:
            xs = parse_npy(f)
        table = parse_meta("r.jsonl", "application/json", meta)
        table = VectorTable(x=xs, labels=table.labels, splits=table.splits, texts=table.texts)
        del meta
        t1 = time.perf_counter()
        settings = Settings(max_vector_records=max(rows, 1))
        clean = validate_table(table, "synthetic", "synthetic:v1", settings)
        del table, xs
        t2 = time.perf_counter()
        with db.session() as s:
            ds = ds_repo.create_vectors(s, tenant, "byo", clean)
            s.flush()
            s.expunge(ds)
        t3 = time.perf_counter()
        del clean
        out["create_s"] = {
            "parse": round(t1 - t0, 2),
            "validate": round(t2 - t1, 2),
            "store": round(t3 - t2, 2),
        }
        out["rss_after_create_mib"] = round(rss_mib())

        t4 = time.perf_counter()
        ex = load_examples(db, ds.id)
        xv = load_vectors(db, ds)
        t5 = time.perf_counter()
        labels = np.asarray([int(v) for v in ex.labels], dtype=object)
        split_arr = np.asarray(ex.splits)
        tr = np.flatnonzero(split_arr == "train")
        va = np.flatnonzero(split_arr == "validation")
        clf = NMTuneClassifier(method=method, random_state=0, device="cpu", **overrides)
        clf.fit(xv[tr], list(labels[tr]), X_val=xv[va], y_val=list(labels[va]))
        t6 = time.perf_counter()
        metrics, _ = evaluate(clf, xv, labels, split_arr, 0, 20_000)
        t7 = time.perf_counter()
        out["train_job_s"] = {
            "load": round(t5 - t4, 2),
            "fit": round(t6 - t5, 2),
            "evaluate": round(t7 - t6, 2),
        }
        out["test_accuracy"] = round(float(metrics["test"]["accuracy"]), 4)
        out["wall_s"] = round(t7 - t0, 2)
        out["peak_rss_mib"] = round(peak_mib())
        out["vectors_mib"] = round(rows * dim * 4 / 2**20)
        db.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--method", default="lp", choices=["lp", "lr"])
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    ap.add_argument(
        "--overrides",
        default='{"batch_size": 4096, "lp_epochs": 2}',
        help="JSON head overrides (default: large batches, 2 epochs)",
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 1))))
    r = run(a.rows, a.dim, a.method, a.db, json.loads(a.overrides))
    print(f"## Vector dataset: {a.rows:,} x {a.dim} ({r['vectors_mib']} MiB float32), {a.method}")
    print()
    print("| phase | s |")
    print("|---|---|")
    for k, v in {
        **r["create_s"],
        **{f"train job: {k}": v for k, v in r["train_job_s"].items()},
    }.items():
        print(f"| {k} | {v} |")
    print(f"| **wall (create + train + evaluate)** | **{r['wall_s']}** |")
    print()
    print(
        f"Peak RSS {r['peak_rss_mib']:,} MiB ({r['peak_rss_mib'] / r['vectors_mib']:.1f}x the "
        f"vectors; process start {r['rss_start_mib']} MiB); test accuracy {r['test_accuracy']}; "
        f"overrides {r['overrides']}."
    )
    print(json.dumps(r))


if __name__ == "__main__":
    main()
