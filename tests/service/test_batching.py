"""Dynamic batching of local backbones: same vectors as direct calls, shortest request first,
small requests share batches, errors reach only their owner, cancellation is clean."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from nmtune.service.embeddings.batching import DynamicBatcher, wants_batching


class SlowBackend:
    """Deterministic vectors; each call takes ``per_input_s`` per input; records batches."""

    extra = "local"
    modality = "text"
    identity = "test:slow:v1"
    dim = 4

    def __init__(self, per_input_s: float = 0.0) -> None:
        self.per_input_s = per_input_s
        self.calls: list[list[str]] = []

    async def ensure_ready(self) -> None:
        return None

    async def embed(self, inputs: Sequence[str]) -> np.ndarray:
        self.calls.append(list(inputs))
        if any(t.startswith("bad") for t in inputs):
            raise ValueError(f"bad input in a batch of {len(inputs)}")
        await asyncio.sleep(self.per_input_s * len(inputs))
        return np.stack([self.vec(t) for t in inputs]) if inputs else np.zeros((0, 4))

    @staticmethod
    def vec(text: str) -> np.ndarray:
        h = sum(ord(c) * (i + 1) for i, c in enumerate(text))
        return np.array([h % 7, h % 11, h % 13, len(text)], dtype=np.float32)


def test_results_equal_direct_calls_in_order() -> None:
    async def go() -> None:
        be = SlowBackend()
        b = DynamicBatcher(be, max_batch=5, budget_s=0)  # no budget: batches of max_batch
        texts = [[f"r{r}-{i}" for i in range(n)] for r, n in enumerate((1, 12, 3, 7))]
        outs = await asyncio.gather(*(b.embed(t) for t in texts))
        for t, out in zip(texts, outs, strict=True):
            np.testing.assert_array_equal(out, np.stack([SlowBackend.vec(x) for x in t]))
        assert all(len(c) <= 5 for c in be.calls)
        assert sum(len(c) for c in be.calls) == 23
        # small requests were put together into one batch with others (fewer calls than
        # one per request per chunk)
        assert len(be.calls) < 1 + 3 + 1 + 2
        assert (await b.embed([])).shape == (0, 4)

    asyncio.run(go())


def test_small_request_overtakes_a_large_one() -> None:
    async def go() -> None:
        be = SlowBackend(per_input_s=0.002)
        b = DynamicBatcher(be, max_batch=64, budget_s=0.02, initial_cost_s=0.002)
        done: list[str] = []

        async def run(name: str, n: int, delay: float) -> None:
            await asyncio.sleep(delay)
            await b.embed([f"{name}{i}" for i in range(n)])
            done.append(name)

        await asyncio.gather(run("big", 400, 0), run("small", 2, 0.05))
        assert done == ["small", "big"]
        # the budget keeps batches near 20 ms of model time (10 inputs at 2 ms)
        assert max(len(c) for c in be.calls) <= 20
        small_call = next(
            i for i, c in enumerate(be.calls) if any(x.startswith("small") for x in c)
        )
        assert small_call < len(be.calls) - 1  # served while the big one still had batches

    asyncio.run(go())


def test_budget_sizes_batches_from_the_fitted_cost() -> None:
    b = DynamicBatcher(SlowBackend(), max_batch=256, budget_s=0.05, initial_cost_s=0.01)
    assert b.batch_size() == 5  # the initial guess: 10 ms an input, no fixed cost
    c = b.cost
    # batches of several sizes at a = 14 ms fixed + b = 3 ms an input: the fit separates them
    for n in (2, 4, 8, 2, 4):
        c.observe(n, 0.014 + 0.003 * n)
    assert c.fitted
    assert c.fixed_s == pytest.approx(0.014, abs=1e-9)
    assert c.per_input_s == pytest.approx(0.003, rel=1e-9)
    assert b.batch_size() == 12  # (50 - 14) / 3
    assert c.size(0.025, 256) == 5  # 3 fit in 25 ms, but then a would be over half the batch
    assert c.size(0.05, 8) == 8
    assert c.size(0.0, 256) == 5  # no budget left after a: still ceil(a / b)
    assert c.size(10.0, 256) == 16  # at most twice the largest batch seen (8)
    # a fixed cost that moves while every batch has one size: the prediction at that size
    # follows it (the slope is kept from the last fit that could separate the two)
    for _ in range(20):
        c.observe(12, 0.020 + 0.003 * 12)
    assert c.fixed_s + 12 * c.per_input_s == pytest.approx(0.056, rel=1e-3)
    assert c.per_input_s > 0


def test_a_fixed_cost_per_batch_does_not_collapse_batches_to_one_input() -> None:
    # The cost estimate used to be (batch time / batch size) alone: with a budget under twice
    # a one-input batch's time, the size sank to 1 and stayed there (each one-input batch
    # confirmed it), so a large request ran one input per forward pass.
    class FixedCost(SlowBackend):
        async def embed(self, inputs: Sequence[str]) -> np.ndarray:
            await asyncio.sleep(0.02)  # 20 ms per forward pass, plus 1 ms an input
            return await super().embed(inputs)

    async def go() -> None:
        be = FixedCost(per_input_s=0.001)
        b = DynamicBatcher(be, max_batch=256, budget_s=0.03, initial_cost_s=0.03)
        out = await b.embed([f"t{i}" for i in range(200)])
        assert out.shape == (200, 4)
        assert len(be.calls) <= 25  # the old estimate: 200 one-input calls
        assert b.cost.fitted and b.cost.fixed_s > 0.01
        assert b.batch_size() >= 10  # at least a / b, so a is at most half a batch

    asyncio.run(go())


def test_error_reaches_only_its_owner() -> None:
    async def go() -> None:
        be = SlowBackend()
        b = DynamicBatcher(be, max_batch=8, budget_s=0)
        good = b.embed(["a", "b"])
        bad = b.embed(["c", "bad!"])
        res = await asyncio.gather(good, bad, return_exceptions=True)
        assert isinstance(res[0], np.ndarray) and res[0].shape == (2, 4)
        assert isinstance(res[1], ValueError)
        assert "batch of 2" in str(res[1])  # re-run alone: the message is about its own inputs

    asyncio.run(go())


def test_input_error_index_is_the_requests_own() -> None:
    from nmtune.adapters import InputPolicyError

    class Policy(SlowBackend):
        async def embed(self, inputs: Sequence[str]) -> np.ndarray:
            self.calls.append(list(inputs))
            for i, t in enumerate(inputs):
                if t == "empty":
                    raise InputPolicyError("empty input", i)
            return np.stack([self.vec(t) for t in inputs])

    async def go() -> None:
        b = DynamicBatcher(Policy(), max_batch=3, budget_s=0)
        with pytest.raises(InputPolicyError) as e:
            await b.embed(["a", "b", "c", "d", "empty", "f"])  # second batch, its index 1
        assert e.value.index == 4

    asyncio.run(go())


def test_cancelled_request_stops_getting_batches() -> None:
    async def go() -> None:
        be = SlowBackend(per_input_s=0.01)
        b = DynamicBatcher(be, max_batch=2, budget_s=0)
        task = asyncio.create_task(b.embed([f"x{i}" for i in range(40)]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        n = len(be.calls)
        out = await b.embed(["after"])
        assert out.shape == (1, 4) and len(be.calls) <= n + 2

    asyncio.run(go())


def test_only_local_backends_are_batched() -> None:
    assert wants_batching(SlowBackend())  # type: ignore[arg-type]

    class Remote(SlowBackend):
        extra = "openai"

    assert not wants_batching(Remote())  # type: ignore[arg-type]
