"""Tenant fairness under load (issue 12): tenant A saturates its job quota, holds its event
streams open and floods predict; tenant B's next job must start within one job's time and
B's predict p99 must stay within 2x of its unloaded p99.

    python benchmarks/bench_fairness.py [--requests 200] [--concurrency 2]

Runs the real service (SQLite file, inline runner) over loopback HTTP with the fake
OpenAI-compatible backbone from tests/fakes; prints one JSON line with the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmtune.service.app import create_app
from nmtune.service.auth.service import create_key
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from tests.fakes.openai_server import FakeOpenAIServer
from tests.service.conftest import (
    ServerThread,
    fake_spec,
    make_settings,
    sentiment_records,
    wait_job,
)


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98] if len(xs) >= 2 else xs[0]


def predict_latencies(c: httpx.Client, head: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        r = c.post(f"/v1/heads/{head}/predict", json={"inputs": [f"a fine film {i % 7}"]})
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=2, help="runner_concurrency")
    ap.add_argument("--epochs", type=int, default=200, help="lp_epochs of A's jobs")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        key_a, key_b = create_key(s, "tenant-a").key, create_key(s, "tenant-b").key
    with FakeOpenAIServer(dim=16) as upstream:
        settings = make_settings(
            url,
            [fake_spec(upstream)],
            runner_concurrency=args.concurrency,
            max_jobs_per_tenant=20,
            rate_limit="100000/minute",
        )
        with ServerThread(create_app(settings)) as base:
            a = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key_a}"}, timeout=300
            )
            b = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key_b}"}, timeout=300
            )
            recs = sentiment_records(12)
            ds_a = a.post("/v1/datasets", json={"name": "a", "records": recs}).json()["id"]
            ds_b = b.post("/v1/datasets", json={"name": "b", "records": recs}).json()["id"]

            def head(c: httpx.Client, ds: str, **ov: Any) -> dict[str, Any]:
                body = {"dataset_id": ds, "backbone": "fake", "method": "lp", "overrides": ov}
                r = c.post("/v1/heads", json=body)
                assert r.status_code == 202, r.text
                return dict(r.json())

            t0 = time.perf_counter()
            hb = head(b, ds_b, lp_epochs=2, min_steps=0)
            wait_job(b, hb["job"]["id"])
            one_job_s = time.perf_counter() - t0
            b_head = hb["head"]["id"]
            unloaded = predict_latencies(b, b_head, args.requests)

            # A saturates: its whole job quota, long jobs, streams open, a predict flood
            a_jobs = []
            while True:
                r = a.post(
                    "/v1/heads",
                    json={
                        "dataset_id": ds_a,
                        "backbone": "fake",
                        "method": "lp",
                        "overrides": {"lp_epochs": args.epochs},
                    },
                )
                if r.status_code == 429:
                    break
                a_jobs.append(r.json()["job"]["id"])
            stop = threading.Event()
            streams_429 = 0

            def stream(job: str) -> None:
                nonlocal streams_429
                with (
                    httpx.Client(
                        base_url=base, headers={"Authorization": f"Bearer {key_a}"}, timeout=None
                    ) as c,
                    c.stream("GET", f"/v1/jobs/{job}/events") as resp,
                ):
                    if resp.status_code == 429:
                        streams_429 += 1
                        return
                    for _ in resp.iter_lines():
                        if stop.is_set():
                            return

            def flood() -> None:
                with httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {key_a}"}, timeout=60
                ) as c:
                    a_head = a_jobs and c.get(f"/v1/jobs/{a_jobs[0]}").json()["head_id"]
                    while not stop.is_set():
                        c.get("/v1/datasets")
                        c.get(f"/v1/heads/{a_head}")

            threads = [threading.Thread(target=stream, args=(a_jobs[0],)) for _ in range(12)]
            threads += [threading.Thread(target=flood) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            t0 = time.perf_counter()
            hb2 = head(b, ds_b, lp_epochs=2, min_steps=0)
            while b.get(f"/v1/jobs/{hb2['job']['id']}").json()["status"] == "queued":
                time.sleep(0.05)
            b_start_s = time.perf_counter() - t0
            loaded = predict_latencies(b, b_head, args.requests)
            stop.set()
            for j in a_jobs:
                a.post(f"/v1/jobs/{j}/cancel")
            for t in threads:
                t.join(timeout=30)
    out = {
        "runner_concurrency": args.concurrency,
        "a_jobs_accepted": len(a_jobs),
        "a_streams_refused_429": streams_429,
        "one_job_s": round(one_job_s, 2),
        "b_next_job_start_s": round(b_start_s, 2),
        "b_predict_p99_unloaded_ms": round(p99(unloaded) * 1000, 1),
        "b_predict_p99_loaded_ms": round(p99(loaded) * 1000, 1),
        "p99_ratio": round(p99(loaded) / p99(unloaded), 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
