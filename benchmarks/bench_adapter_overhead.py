"""Adapter overhead: N short texts through OpenAIBackend vs the raw openai SDK.

Both send the same batches (same sizes, same concurrency, base64) to the same loopback
FakeOpenAIServer (fault-free), interleaved, several repetitions; prints medians/bests and
the adapter overhead in %. Run: python benchmarks/bench_adapter_overhead.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmtune.adapters import build_backend
from tests.fakes.openai_server import FakeOpenAIServer


async def raw_sdk(client: openai.AsyncOpenAI, texts: list[str], bs: int, conc: int) -> np.ndarray:
    sem = asyncio.Semaphore(conc)

    async def one(chunk: list[str]) -> np.ndarray:
        async with sem:
            r = await client.embeddings.create(
                input=chunk, model="fake-embed", encoding_format="base64"
            )
        return np.stack(
            [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in r.data]  # type: ignore[arg-type]
        )

    parts = await asyncio.gather(*(one(texts[i : i + bs]) for i in range(0, len(texts), bs)))
    return np.concatenate(parts)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    texts = [f"short text number {i} about topic {i % 97}" for i in range(a.n)]
    with FakeOpenAIServer(dim=a.dim, max_inputs=a.batch) as srv:
        backend = build_backend(
            {
                "name": "bench",
                "kind": "openai-compatible",
                "base_url": srv.base_url,
                "model": "fake-embed",
                "api_key": "x",
                "tokenizer": "cl100k_base",
                "max_inputs_per_request": a.batch,
                "max_tokens_per_request": 300_000,
                "max_concurrency": a.concurrency,
            }
        )
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        # warm-up both paths (connections, tokenizer, numpy)
        await backend.embed(texts[:100])
        await raw_sdk(client, texts[:100], a.batch, a.concurrency)
        t_ad: list[float] = []
        t_raw: list[float] = []
        for rep in range(a.reps):
            order = ("adapter", "raw") if rep % 2 == 0 else ("raw", "adapter")
            for which in order:
                t0 = time.perf_counter()
                if which == "adapter":
                    out_ad = await backend.embed(texts)
                    t_ad.append(time.perf_counter() - t0)
                else:
                    out_raw = await raw_sdk(client, texts, a.batch, a.concurrency)
                    t_raw.append(time.perf_counter() - t0)
        assert np.array_equal(out_ad, out_raw), "adapter and raw SDK disagree"
        await backend.aclose()
        await client.close()
    med_ad, med_raw = statistics.median(t_ad), statistics.median(t_raw)
    best_ad, best_raw = min(t_ad), min(t_raw)
    print(
        f"machine: {platform.platform()} | python {platform.python_version()} | "
        f"cpus {os.cpu_count()} | {platform.processor() or platform.machine()}"
    )
    print(
        f"openai {openai.__version__} | N={a.n} dim={a.dim} batch={a.batch} "
        f"concurrency={a.concurrency} reps={a.reps} (interleaved)"
    )
    print(f"raw SDK : median {med_raw * 1e3:8.1f} ms  best {best_raw * 1e3:8.1f} ms")
    print(f"adapter : median {med_ad * 1e3:8.1f} ms  best {best_ad * 1e3:8.1f} ms")
    print(
        f"adapter overhead: median {100 * (med_ad / med_raw - 1):+.1f} %  "
        f"best-of {100 * (best_ad / best_raw - 1):+.1f} %  (target <= 5 %)"
    )


if __name__ == "__main__":
    asyncio.run(main())
