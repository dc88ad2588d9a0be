"""Dynamic batching for local backbones: concurrent requests share the model one batch at a
time, the shortest request first, so a 2,048-text predict cannot starve small ones.

One dispatcher task per (backend, event loop) takes the pending requests' remaining inputs,
fewest remaining first (ties: first come), into batches of at most ``max_batch`` inputs and at
most about ``budget_s`` of model time (sized from a running fit of its cost), runs each batch
with the backend (which computes off the event loop) and scatters the rows back. A small
request therefore waits at most one budget-sized batch behind a large one, and inputs of
several small requests are embedded in one forward pass.

Batch sizes come from a running fit of the model time of a batch of n inputs, t(n) = a + b n
(:class:`BatchCost`): a fixed cost per forward pass plus one per input. A batch is as large as
fits in the budget, and (within ``max_batch``) large enough that the fixed cost is at most half
of its time (a budget below twice the fixed cost would otherwise run a large request one input
at a time).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmtune.adapters import EmbeddingBackend, InputPolicyError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Request:
    items: list[Any]
    future: asyncio.Future[np.ndarray]
    seq: int
    next: int = 0  # first input not yet handed to a batch
    parts: list[tuple[int, np.ndarray]] = field(default_factory=list)
    received: int = 0

    @property
    def remaining(self) -> int:
        return len(self.items) - self.next


class BatchCost:
    """Running estimate of a backend's model time for a batch of n inputs, t(n) = a + b n.

    Dividing a batch's time by its size alone (one cost per input) makes small batches look
    expensive: with a budget under twice a one-input batch's time the planned size sinks to 1
    and each one-input batch confirms it, so a 2,048-text request ran as 2,048 forward passes
    (MiniLM on this CPU: a ~ 14 ms, b ~ 3 ms; at a 25 ms budget a 4-text predict took 78 ms and a
    2,048-text one 39 s against 11 s). Here a and b are a least-squares fit over the recent
    (n, t) pairs, each older one weighing ``decay`` times less. Batches of a single size cannot
    separate a from b: b is then kept from the last fit that could, and a follows the data.
    Until a fit has separated them, the next size is at least twice the last one (one larger
    batch, within ``max_batch``, gives the second point). A size is never over twice the
    largest batch seen, so a noisy fit cannot jump to one huge batch that a small request
    would have to wait behind.
    """

    def __init__(self, initial_per_input_s: float, decay: float = 0.8) -> None:
        self.decay = decay
        self.fixed_s = 0.0  # a
        self.per_input_s = max(float(initial_per_input_s), 1e-9)  # b
        self._sums = np.zeros(5)  # weighted sums of 1, n, n^2, t, n t
        self._last_n = 0
        self._max_n = 0
        self.fitted = False  # a and b have been separated by batches of different sizes

    def observe(self, n: int, seconds: float) -> None:
        """One batch of ``n`` inputs took ``seconds`` of model time."""
        if n <= 0:
            return
        self._last_n = n
        self._max_n = max(self._max_n, n)
        self._sums = self.decay * self._sums + np.array([1.0, n, n * n, seconds, n * seconds])
        w, sn, snn, st, snt = self._sums
        mean_n, mean_t = sn / w, st / w
        var_n = snn / w - mean_n * mean_n
        if var_n >= (0.2 * mean_n) ** 2:  # sizes spread enough for a stable slope
            b = (snt / w - mean_n * mean_t) / var_n
            if b > 0:
                self.per_input_s = max(b, 1e-9)
                self.fitted = True
        self.fixed_s = max(0.0, mean_t - self.per_input_s * mean_n)

    def size(self, budget_s: float, max_batch: int) -> int:
        """Inputs per batch: as many as fit in ``budget_s``, at least ``a / b`` (the fixed
        cost at most half the batch's time), at most twice the largest batch seen (once
        one has been), within [1, max_batch]."""
        a, b = self.fixed_s, self.per_input_s
        n = max(int((budget_s - a) / b), math.ceil(a / b), 1)
        if not self.fitted:
            n = max(n, 2 * self._last_n)
        if self._max_n:
            n = min(n, 2 * self._max_n)
        return min(max_batch, n)


class DynamicBatcher:
    """``await batcher.embed(inputs)``: the backend's vectors for ``inputs``, in order."""

    def __init__(
        self,
        backend: EmbeddingBackend,
        max_batch: int,
        budget_s: float,
        *,
        initial_cost_s: float = 0.01,
    ) -> None:
        self.backend = backend
        self.max_batch = max(1, int(max_batch))
        self.budget_s = budget_s
        self.cost = BatchCost(initial_cost_s)  # running fit of a batch's model time
        self._pending: list[_Request] = []
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches run (for tests and metrics)

    def batch_size(self) -> int:
        if self.budget_s <= 0:
            return self.max_batch
        return self.cost.size(self.budget_s, self.max_batch)

    async def embed(self, inputs: Sequence[Any]) -> np.ndarray:
        items = list(inputs)
        if not items:
            return np.asarray(await self.backend.embed(items), dtype=np.float32)
        loop = asyncio.get_running_loop()
        self._seq += 1
        req = _Request(items=items, future=loop.create_future(), seq=self._seq)
        self._pending.append(req)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name="nmtune-dynamic-batcher")
        try:
            return await req.future
        finally:
            if req in self._pending:  # cancelled while waiting: hand out nothing more
                self._pending.remove(req)

    def _take(self) -> list[tuple[_Request, int, int]]:
        """(request, start, stop) slices of the next batch: fewest remaining inputs first."""
        size = self.batch_size()
        plan: list[tuple[_Request, int, int]] = []
        for req in sorted(self._pending, key=lambda r: (r.remaining, r.seq)):
            if size <= 0:
                break
            n = min(size, req.remaining)
            if n <= 0:
                continue
            plan.append((req, req.next, req.next + n))
            req.next += n
            size -= n
        for req, _, _ in plan:
            if req.remaining == 0:
                self._pending.remove(req)
        return plan

    async def _dispatch(self) -> None:
        try:
            await self._loop()
        except BaseException as exc:  # cancelled with the loop: nobody may wait forever
            for req in list(self._pending):
                self._abort(req, RuntimeError(f"embedding batcher stopped ({exc!r})"))
            raise

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            plan = self._take()
            if not plan:
                break
            batch = [x for req, a, b in plan for x in req.items[a:b]]
            t0 = loop.time()
            try:
                vecs = np.asarray(await self.backend.embed(batch), dtype=np.float32)
            except Exception as exc:
                await self._fail(plan, exc)
                continue
            dt = loop.time() - t0
            self.batches += 1
            self.cost.observe(len(batch), dt)
            offset = 0
            for req, a, b in plan:
                self._deliver(req, a, vecs[offset : offset + (b - a)])
                offset += b - a

    async def _fail(self, plan: list[tuple[_Request, int, int]], exc: Exception) -> None:
        """A failed mixed batch is re-run per request, so an error reaches only its owner
        (with indices that are its own)."""
        if len(plan) == 1:
            req, a, _ = plan[0]
            self._abort(req, _own_index(exc, a))
            return
        for req, a, b in plan:
            if req.future.done():
                continue
            try:
                vecs = np.asarray(await self.backend.embed(req.items[a:b]), dtype=np.float32)
            except Exception as own:
                self._abort(req, _own_index(own, a))
            else:
                self._deliver(req, a, vecs)

    def _abort(self, req: _Request, exc: Exception) -> None:
        if req in self._pending:
            self._pending.remove(req)
        if not req.future.done():
            req.future.set_exception(exc)

    @staticmethod
    def _deliver(req: _Request, start: int, vecs: np.ndarray) -> None:
        if req.future.done():  # cancelled or failed meanwhile
            return
        req.parts.append((start, vecs))
        req.received += vecs.shape[0]
        if req.received == len(req.items):
            req.parts.sort(key=lambda p: p[0])
            req.future.set_result(np.concatenate([p[1] for p in req.parts], axis=0))


def _own_index(exc: Exception, start: int) -> Exception:
    """An input error's index, made relative to the request (its slice began at ``start``)."""
    if isinstance(exc, InputPolicyError) and start:
        return InputPolicyError(exc.reason, exc.index + start)
    return exc


def wants_batching(backend: EmbeddingBackend) -> bool:
    """Local models (one forward pass at a time in this process) are batched; remote APIs
    take concurrent requests themselves."""
    return getattr(backend, "extra", None) == "local"
