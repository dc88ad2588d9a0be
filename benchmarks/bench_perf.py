"""Performance benchmark: every figure is a ratio of two things measured side by side here.

    python benchmarks/bench_perf.py [--quick] [--no-postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

1. nmtune / mlp training step time (benchmarks/bench_tuner_step.py), D = 384 and 1536.
2. Time to train a head (lp, mlp, nmtune presets, auto) vs scikit-learn LogisticRegression
   on the same features (MiniLM VADER-movies from the embedding cache if present, else a
   synthetic stand-in of the same shape).
3. Predict throughput vs a bare FastAPI endpoint (runs benchmarks/bench_predict.py).
4. Embedding-cache read / write throughput, SQLite vs PostgreSQL (a fresh database, dropped
   afterwards), through service.embeddings.repository.read_vectors / write_vectors.
5. Adapter overhead vs the raw openai SDK (runs benchmarks/bench_adapter_overhead.py).
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
import warnings
from datetime import UTC, datetime
from pathlib import Path

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


def load_features() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    try:
        from accuracy_data import DEFAULT_DATA, MINILM, CachedEmbedder, load_tasks, split_indices

        tasks = load_tasks(DEFAULT_DATA, ["vader-nyt"])
        t = tasks["vader-nyt"]
        emb = CachedEmbedder()
        from adapters import build_backend, identity_digest
        from service.embeddings.service import input_sha256

        backend = build_backend(MINILM)
        keys = [input_sha256(x) for x in t.texts]
        with emb.db.session() as s:
            from service.embeddings.repository import read_vectors

            found = read_vectors(s, emb.tenant_id, identity_digest(backend.identity), keys)
        if len(found) < len(set(keys)):
            raise LookupError("cache not warm")
        x = np.stack([found[k] for k in keys]).astype(np.float32)
        y = np.asarray(t.labels)
        tr, va, _ = split_indices(y, 0)
        return (
            x[tr],
            y[tr],
            x[va],
            y[va],
            f"MiniLM VADER-nyt (train {tr.size}, val {va.size}, 384-d)",
        )
    except Exception as exc:  # no data / cold cache: same shape, synthetic
        rng = np.random.default_rng(0)
        n, d = 2228, 384
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, d)).astype(np.float32) + 0.3 * y[:, None]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x[:1931], y[:1931], x[1931:], y[1931:], f"synthetic {n}x{d} ({exc})"


def train_time() -> None:
    from sklearn.linear_model import LogisticRegression

    from tuner import NMTuneClassifier

    x_tr, y_tr, x_va, y_va, what = load_features()
    emit("## 2. Time to train a head vs scikit-learn LogisticRegression (same features)")
    emit("")
    emit(
        f"Features: {what}; tuner heads: 30 epochs, batch 64, validation every epoch; "
        "LR: LogisticRegression(max_iter=100) (MTEB). One fit each, same process, in turn."
    )
    emit("")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LogisticRegression(max_iter=100).fit(x_tr, y_tr)
    t_lr = time.perf_counter() - t0
    emit("| method | fit s | / LogisticRegression |")
    emit("|---|---|---|")
    emit(f"| sklearn LogisticRegression | {t_lr:.2f} | 1.00 |")
    for name, kw in (
        ("lp", {"method": "lp"}),
        ("mlp", {"method": "mlp"}),
        ("nmtune paper-code", {"method": "nmtune"}),
        ("nmtune robust", {"method": "nmtune", "preset": "robust"}),
    ):
        t0 = time.perf_counter()
        NMTuneClassifier(random_state=0, device="cpu", **kw).fit(x_tr, y_tr, X_val=x_va, y_val=y_va)
        dt = time.perf_counter() - t0
        emit(f"| {name} | {dt:.2f} | {dt / t_lr:.1f} |")
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


def _cache_round(url: str, n: int, dim: int, chunk: int) -> dict[str, float]:
    from service.auth.service import get_or_create_tenant
    from service.db.migrate import upgrade
    from service.db.session import Database
    from service.embeddings.repository import read_vectors, write_vectors

    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            tenant = get_or_create_tenant(s, "perf").id
        rng = np.random.default_rng(0)
        vecs = rng.normal(size=(n, dim)).astype(np.float32)
        keys = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(n)]
        bh = "b" * 64
        t0 = time.perf_counter()
        for i in range(0, n, chunk):  # one transaction per chunk, as EmbeddingCache writes
            with db.session() as s:
                write_vectors(
                    s, tenant, bh, list(zip(keys[i : i + chunk], vecs[i : i + chunk], strict=True))
                )
        t_w = time.perf_counter() - t0
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            with db.session() as s:
                got = read_vectors(s, tenant, bh, keys)
            reads.append(time.perf_counter() - t0)
        assert len(got) == n and np.array_equal(got[keys[7]], vecs[7])
        return {"write_s": t_w, "read_s": statistics.median(reads)}
    finally:
        db.dispose()


def cache(n: int, dim: int, pg_url: str | None) -> None:
    emit(
        f"## 4. Embedding cache throughput: {n} vectors x {dim} float32 "
        f"({n * dim * 4 / 2**20:.0f} MiB)"
    )
    emit("")
    emit(
        "service.embeddings.repository.write_vectors (512 per transaction, as EmbeddingCache) "
        "and read_vectors (all keys, median of 3), fresh database each."
    )
    emit("")
    res: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        res["SQLite (file, WAL)"] = _cache_round(f"sqlite:///{d}/perf.db", n, dim, 512)
    if pg_url:
        import psycopg

        base, _, _ = pg_url.rpartition("/")
        name = f"nmtune_perf_{uuid.uuid4().hex[:8]}"
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        try:
            res["PostgreSQL"] = _cache_round(f"{base}/{name}", n, dim, 512)
        finally:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    emit("| store | write vectors/s | read vectors/s | write MiB/s | read MiB/s |")
    emit("|---|---|---|---|---|")
    mib = n * dim * 4 / 2**20
    for k, v in res.items():
        emit(
            f"| {k} | {n / v['write_s']:,.0f} | {n / v['read_s']:,.0f} | "
            f"{mib / v['write_s']:.1f} | {mib / v['read_s']:.1f} |"
        )
    if len(res) == 2:
        s, p = res["SQLite (file, WAL)"], res["PostgreSQL"]
        emit("")
        emit(
            f"Ratio PostgreSQL / SQLite throughput: write {s['write_s'] / p['write_s']:.2f}, "
            f"read {s['read_s'] / p['read_s']:.2f}. Read / write throughput: SQLite "
            f"{s['write_s'] / s['read_s']:.1f}, PostgreSQL {p['write_s'] / p['read_s']:.1f}."
        )
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
        "--only", nargs="*", default=None, help="sections to run: step train predict cache adapter"
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    sections = set(a.only or ["step", "train", "predict", "cache", "adapter"])
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
        train_time()
    if "predict" in sections:
        predict(a.quick)
    if "cache" in sections:
        cache(2000 if a.quick else a.vectors, 384, None if a.no_postgres else a.pg_url)
    if "adapter" in sections:
        adapter(a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not a.only and not a.quick:
        (RESULTS / "perf.md").write_text("\n".join(OUT) + "\n")
        print(f"wrote {RESULTS / 'perf.md'}")


if __name__ == "__main__":
    main()
