"""Performance benchmark: every figure is a ratio of two things measured side by side here.

    python benchmarks/bench_perf.py [--quick] [--no-postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

1. nmtune / mlp training step time (benchmarks/bench_tuner_step.py), D = 384 and 1536.
2. Time to train a head (lp, mlp, nmtune presets, auto) vs scikit-learn LogisticRegression
   on the same features (MiniLM VADER-nyt through the benchmarks' embedding cache, and a
   50k x 1536 synthetic set), before / after early stopping, with test accuracy.
3. Predict throughput vs a bare FastAPI endpoint (runs benchmarks/bench_predict.py).
4. Embedding-cache read / write throughput, SQLite vs PostgreSQL (a fresh database, dropped
   afterwards), 20k x 384 and 100k x 1536, through service.embeddings.repository
   read_matrix / write_matrix, with the pre-issue-15 code side by side.
5. Adapter overhead vs the raw openai SDK (runs benchmarks/bench_adapter_overhead.py).
6. Spectrum of N = 100k, D = 3072 (seconds, peak RSS).
7. A 1M x 384 vector dataset created, a head trained and evaluated (benchmarks/bench_byo.py).
8. Small predicts' p99 while a 2,048-text predict runs (benchmarks/bench_predict_load.py).
Writes benchmarks/results/perf.md (and prints it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

RESULTS = HERE / "results"
OUT: list[str] = []


def emit(line: str = "") -> None:
    print(line, flush=True)
    OUT.append(line)


def versions() -> str:
    import fastapi
    import sklearn
    import sqlalchemy
    import torch

    try:
        import psycopg

        pg = psycopg.__version__
    except ImportError:  # pragma: no cover
        pg = "absent"
    return (
        f"python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, fastapi {fastapi.__version__}, sqlalchemy "
        f"{sqlalchemy.__version__}, psycopg {pg}"
    )


# --- 1. step time ----------------------------------------------------------------------------


def step_time(reps: int) -> None:
    from bench_tuner_step import bench_dim

    emit("## 1. Training step time: nmtune / mlp (target <= 1.25)")
    emit("")
    emit(
        f"B=64, C=10, forward+backward+AdamW, median of {reps} interleaved reps, CPU. "
        "`naive` = textbook regularisers (full D x D covariance + svdvals), for contrast."
    )
    emit("")
    emit("| D | mlp ms | nmtune ms | naive ms | nmtune / mlp | naive / mlp |")
    emit("|---|---|---|---|---|---|")
    for dim in (384, 1536):
        t = bench_dim(dim, 64, 10, reps, 5)
        emit(
            f"| {dim} | {t['mlp'] * 1e3:.2f} | {t['nmtune'] * 1e3:.2f} | {t['naive'] * 1e3:.2f} "
            f"| **{t['nmtune'] / t['mlp']:.3f}** | {t['naive'] / t['mlp']:.3f} |"
        )
    emit("")


# --- 2. head training vs LogisticRegression ----------------------------------------------


def train_time(synthetic_rows: int, quick: bool) -> None:
    """Fit time of the heads vs LogisticRegression, before (patience=0) / after (default
    early stopping), with test accuracy: benchmarks/bench_train_speed.py."""
    from bench_train_speed import run, synthetic, vader
    from threadpoolctl import threadpool_limits

    emit("## 2. Time to train a head vs scikit-learn LogisticRegression (same features)")
    emit("")
    emit(
        "benchmarks/bench_train_speed.py: LogisticRegression(max_iter=100) (MTEB) and each head "
        "on the same features in one process, in turn; `x LR` = the head's fit time over "
        "LogisticRegression's in the same round; before = early stopping off (`patience=0`, "
        "the loop before issue 15), after = the default; accuracy on the test split. BLAS and "
        "torch limited to the same thread count."
    )
    emit("")
    threads = int(os.environ.get("BENCH_THREADS", "1"))
    with threadpool_limits(limits=threads):
        d = synthetic(2000, 64, 0, classes=2) if quick else vader("nyt", 0)
        seeds = {d.name: 0}
        lines = run([d], ["lp", "mlp", "paper-code", "robust"], seeds, None)
        if synthetic_rows:
            big = synthetic(synthetic_rows, 1536, 0)
            seeds[big.name] = 0
            lines += run([big], ["lp"], seeds, None)[2:]
    for line in lines:
        emit(line)
    emit("")


# --- 3. predict vs bare FastAPI ------------------------------------------------------------


def predict(quick: bool) -> None:
    emit("## 3. Predict throughput vs a bare FastAPI endpoint (target >= 0.50)")
    emit("")
    cmd = [sys.executable, str(HERE / "bench_predict.py")]
    if quick:
        cmd += ["--requests", "200", "--rounds", "2"]
    emit(f"`{' '.join(['python', 'benchmarks/bench_predict.py', *cmd[2:]])}` output:")
    emit("")
    emit("```")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    for line in (r.stdout + (r.stderr if r.returncode else "")).strip().splitlines()[-40:]:
        emit(line)
    emit("```")
    emit("")


# --- 4. cache throughput -----------------------------------------------------------------


def _legacy_write(session: Any, tenant: str, bh: str, pairs: list[tuple[str, np.ndarray]]) -> None:
    """The cache's write before issue 15: one SQLAlchemy parameter dict per row."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from nmtune.service.embeddings.models import CachedEmbedding

    rows = [
        {
            "tenant_id": tenant,
            "backbone_hash": bh,
            "input_sha256": k,
            "dim": int(v.shape[0]),
            "vector": np.ascontiguousarray(v, dtype="<f4").tobytes(),
        }
        for k, v in pairs
    ]
    pg = session.get_bind().dialect.name == "postgresql"
    stmt = (pg_insert if pg else sqlite_insert)(CachedEmbedding).on_conflict_do_nothing(
        index_elements=["tenant_id", "backbone_hash", "input_sha256"]
    )
    session.execute(stmt, rows)


def _legacy_read(session: Any, tenant: str, bh: str, keys: list[str]) -> dict[str, np.ndarray]:
    """The cache's read before issue 15: SQLAlchemy rows, IN lists of 500 (SQLite) or a
    text-format unnest join (PostgreSQL), one frombuffer per row into a dict."""
    from sqlalchemy import select, text

    from nmtune.service.embeddings.models import CachedEmbedding

    out: dict[str, np.ndarray] = {}
    if session.get_bind().dialect.name == "postgresql":
        q = text(
            "SELECT e.input_sha256, e.dim, e.vector FROM unnest(CAST(:keys AS text[])) AS k(key) "
            "JOIN embeddings e ON e.tenant_id = :tenant AND e.backbone_hash = :bh "
            "AND e.input_sha256 = k.key"
        )
        chunks = [
            session.execute(q, {"keys": keys[i : i + 5000], "tenant": tenant, "bh": bh}).all()
            for i in range(0, len(keys), 5000)
        ]
    else:
        c = CachedEmbedding
        chunks = [
            session.execute(
                select(c.input_sha256, c.dim, c.vector).where(
                    c.tenant_id == tenant,
                    c.backbone_hash == bh,
                    c.input_sha256.in_(keys[i : i + 500]),
                )
            ).all()
            for i in range(0, len(keys), 500)
        ]
    for rows in chunks:
        for key, dim, blob in rows:
            vec = np.frombuffer(blob, dtype="<f4")
            if vec.shape[0] == dim:
                out[key] = vec
    return out


def _cache_round(url: str, n: int, dim: int, chunk: int, legacy: bool = False) -> dict[str, float]:
    """Write n vectors in transactions of ``chunk`` (as EmbeddingCache commits each backend
    batch), then read them all back (median of 3); ``legacy``: the pre-issue-15 code too, on
    its own keys in the same database."""
    from nmtune.service.auth.service import get_or_create_tenant
    from nmtune.service.datasets.models import Dataset
    from nmtune.service.db.migrate import upgrade
    from nmtune.service.db.session import Database
    from nmtune.service.embeddings.repository import (
        read_features,
        read_matrix,
        write_features,
        write_matrix,
    )

    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            tenant = get_or_create_tenant(s, "perf").id
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((n, dim), dtype=np.float32)
        keys = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(n)]
        out: dict[str, float] = {}
        t0 = time.perf_counter()
        for i in range(0, n, chunk):
            with db.session() as s:
                write_matrix(s, tenant, "b" * 64, keys[i : i + chunk], vecs[i : i + chunk])
        out["write_s"] = time.perf_counter() - t0
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            with db.session() as s:
                pos, got = read_matrix(s, tenant, "b" * 64, keys, dim)
            reads.append(time.perf_counter() - t0)
        assert pos.size == n and np.array_equal(got, vecs)
        out["read_s"] = statistics.median(reads)
        # the same vectors as a dataset's feature snapshot (what heads and audits read)
        with db.session() as s:
            s.add(
                Dataset(
                    id="ds_perf",
                    tenant_id=tenant,
                    name="perf",
                    modality="text",
                    label_kind="str",
                    n_examples=n,
                    counts={},
                )
            )
        t0 = time.perf_counter()
        with db.session() as s:
            write_features(s, "ds_perf", "b" * 64, vecs)
        out["snap_write_s"] = time.perf_counter() - t0
        reads = []
        for _ in range(5):
            t0 = time.perf_counter()
            with db.session() as s:
                snap = read_features(s, "ds_perf", "b" * 64, n, dim)
            reads.append(time.perf_counter() - t0)
            assert snap is not None and np.array_equal(snap, vecs)
            del snap
        out["snap_read_s"] = statistics.median(reads)
        out["snap_read_best_s"] = min(reads)
        if legacy:
            lkeys = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(n)]
            t0 = time.perf_counter()
            for i in range(0, n, chunk):
                with db.session() as s:
                    _legacy_write(
                        s,
                        tenant,
                        "c" * 64,
                        list(zip(lkeys[i : i + chunk], vecs[i : i + chunk], strict=True)),
                    )
            out["legacy_write_s"] = time.perf_counter() - t0
            reads = []
            for _ in range(3):
                t0 = time.perf_counter()
                with db.session() as s:
                    found = _legacy_read(s, tenant, "c" * 64, lkeys)
                    legacy_x = np.stack([found[k] for k in lkeys])
                reads.append(time.perf_counter() - t0)
            assert np.array_equal(legacy_x, vecs)
            out["legacy_read_s"] = statistics.median(reads)
        return out
    finally:
        db.dispose()


def _pg_db(pg_url: str) -> tuple[str, Any]:
    import psycopg

    base, _, _ = pg_url.rpartition("/")
    name = f"nmtune_perf_{uuid.uuid4().hex[:8]}"
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def cache(sizes: list[tuple[int, int]], pg_url: str | None, legacy_max: int) -> None:
    emit(
        "## 4. Embedding cache throughput (targets: read >= 200k/s SQLite, >= 100k/s "
        "PostgreSQL; write >= 50k/s)"
    )
    emit("")
    emit(
        "service.embeddings.repository.write_matrix in transactions of 256 rows (as EmbeddingCache "
        "commits each backend batch) and read_matrix of all keys (median of 3), a fresh database "
        "per size; `before` = the pre-issue-15 code (SQLAlchemy row dicts, IN lists of 500 / "
        "text-format bytea) on the same database, same run."
    )
    emit("")
    emit(
        "| size | store | write vectors/s | read vectors/s | read MiB/s | before: write / read "
        "vectors/s | speed-up write / read |"
    )
    emit("|---|---|---|---|---|---|---|")
    snaps: list[str] = []
    for n, dim in sizes:
        stores: list[tuple[str, str, Any]] = []
        with tempfile.TemporaryDirectory() as d:
            res = _cache_round(f"sqlite:///{d}/perf.db", n, dim, 256, legacy=n <= legacy_max)
            stores.append(("SQLite (file, WAL)", "", res))
        if pg_url:
            url, drop = _pg_db(pg_url)
            try:
                stores.append(
                    ("PostgreSQL", "", _cache_round(url, n, dim, 256, legacy=n <= legacy_max))
                )
            finally:
                drop()
        mib = n * dim * 4 / 2**20
        for name, _, r in stores:
            before = speed = "-"
            if "legacy_read_s" in r:
                before = f"{n / r['legacy_write_s']:,.0f} / {n / r['legacy_read_s']:,.0f}"
                w_up = r["legacy_write_s"] / r["write_s"]
                speed = f"{w_up:.1f}x / {r['legacy_read_s'] / r['read_s']:.1f}x"
            emit(
                f"| {n:,} x {dim} | {name} | {n / r['write_s']:,.0f} | "
                f"**{n / r['read_s']:,.0f}** | {mib / r['read_s']:.0f} | {before} | {speed} |"
            )
            snaps.append(
                f"| {n:,} x {dim} | {name} | {n / r['snap_write_s']:,.0f} | "
                f"**{n / r['snap_read_s']:,.0f}** ({n / r['snap_read_best_s']:,.0f}) | "
                f"{mib / r['snap_read_s']:.0f} | {r['read_s'] / r['snap_read_s']:.1f}x |"
            )
    emit("")
    emit(
        "Dataset feature snapshots (table dataset_features: the same vectors as 4 MiB blocks in "
        "dataset order, what a head or audit of an embedded dataset reads): "
        "repository.write_features in one transaction, read_features (median of 5, best in "
        "brackets), the same database and run as the table above."
    )
    emit("")
    emit(
        "| size | store | write vectors/s | read vectors/s (best) | read MiB/s | "
        "read vs per-key read |"
    )
    emit("|---|---|---|---|---|---|")
    for line in snaps:
        emit(line)
    emit("")


# --- 6. spectrum, 7. vector datasets, 8. small predicts under load --------------------------


def spectrum_big(n: int, dim: int) -> None:
    import resource

    from nmtune.tuner.spectrum import spectrum as tuner_spectrum

    emit(f"## 6. Spectrum of N = {n:,}, D = {dim:,} (float32 features)")
    emit("")
    x = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    sp = tuner_spectrum(x)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emit(
        f"tuner.spectrum (all {n:,} rows, no subsample): {dt:.1f} s; peak RSS {peak:,.0f} MiB "
        f"(the features alone are {x.nbytes / 2**20:,.0f} MiB; peak before the call "
        f"{before:,.0f} MiB); effective rank {sp.effective_rank:.0f}."
    )
    emit("")


def _script(args: list[str], title: str, timeout: int = 3600) -> None:
    emit(title)
    emit("")
    emit(f"`python {' '.join(args)}` output:")
    emit("")
    r = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )
    lines = (r.stdout + (r.stderr if r.returncode else "")).strip().splitlines()
    for line in lines[-40:]:
        if not line.startswith("{"):
            emit(line)
    emit("")


# --- 5. adapter overhead -------------------------------------------------------------------


def adapter(quick: bool) -> None:
    emit("## 5. Adapter overhead vs the raw openai SDK (target <= 5 %)")
    emit("")
    cmd = [sys.executable, str(HERE / "bench_adapter_overhead.py")]
    if quick:
        cmd += ["--n", "5000", "--reps", "3"]
    emit(f"`{' '.join(['python', 'benchmarks/bench_adapter_overhead.py', *cmd[2:]])}` output:")
    emit("")
    emit("```")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    for line in (r.stdout + (r.stderr if r.returncode else "")).strip().splitlines()[-20:]:
        emit(line)
    emit("```")
    emit("")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "NMTUNE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument("--vectors", type=int, default=20_000)
    ap.add_argument(
        "--synthetic-rows",
        type=int,
        default=50_000,
        help="rows of the 1536-d synthetic set of section 2 (0 = none)",
    )
    ap.add_argument(
        "--big-vectors", type=int, default=100_000, help="rows of the 1536-d cache round"
    )
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="sections to run: step train predict cache adapter spectrum byo load",
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    sections = set(
        a.only or ["step", "train", "predict", "cache", "adapter", "spectrum", "byo", "load"]
    )
    emit("# Performance benchmark")
    emit("")
    emit(
        f"`python benchmarks/bench_perf.py {' '.join(sys.argv[1:])}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}"
    )
    emit("")
    emit(
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), no GPU used. Versions: {versions()}. "
        "The machine is shared with other work: absolute times are noisy, the ratios (measured "
        "side by side, interleaved where the script says so) are the figures to read."
    )
    emit("")
    if "step" in sections:
        step_time(10 if a.quick else 30)
    if "train" in sections:
        train_time(0 if a.quick else a.synthetic_rows, a.quick)
    if "predict" in sections:
        predict(a.quick)
    if "cache" in sections:
        sizes = [(2000, 384)] if a.quick else [(a.vectors, 384), (a.big_vectors, 1536)]
        cache(sizes, None if a.no_postgres else a.pg_url, a.vectors)
    if "spectrum" in sections:
        spectrum_big(5000 if a.quick else 100_000, 256 if a.quick else 3072)
    if "byo" in sections:
        rows = "20000" if a.quick else "1000000"
        _script(
            [
                "benchmarks/bench_byo.py",
                "--rows",
                rows,
                "--method",
                "lr",
                "--overrides",
                '{"lr_c": 1.0}',
            ],
            "## 7. A vector dataset of 1M x 384: created, a head trained and evaluated",
        )
    if "load" in sections:
        big = "256" if a.quick else "2048"
        _script(
            [
                "benchmarks/bench_predict_load.py",
                "--big",
                big,
                "--samples",
                "10" if a.quick else "30",
            ],
            "## 8. Small predicts while a 2,048-text predict runs "
            "(target: loaded p99 <= 3x unloaded)",
        )
    if "adapter" in sections:
        adapter(a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not a.only and not a.quick:
        (RESULTS / "perf.md").write_text("\n".join(OUT) + "\n")
        print(f"wrote {RESULTS / 'perf.md'}")


if __name__ == "__main__":
    main()
