"""Dynamic batching for local backbones: concurrent requests share the model one batch at a
time, the shortest request first, so a 2,048-text predict cannot starve small ones.

One dispatcher task per (backend, event loop) takes the pending requests' remaining inputs,
fewest remaining first (ties: first come), into batches of at most ``max_batch`` inputs and at
most about ``budget_s`` of model time (sized from a running per-input cost), runs each batch
with the backend (which computes off the event loop) and scatters the rows back. A small
request therefore waits at most one budget-sized batch behind a large one, and inputs of
several small requests are embedded in one forward pass.
"""

from __future__ import annotations

import asyncio
import logging
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
        self.cost_per_input_s = initial_cost_s  # running estimate (EMA) of model time per input
        self._pending: list[_Request] = []
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches run (for tests and metrics)

    def batch_size(self) -> int:
        if self.budget_s <= 0:
            return self.max_batch
        by_budget = int(self.budget_s / max(self.cost_per_input_s, 1e-6))
        return max(1, min(self.max_batch, by_budget))

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
            self.cost_per_input_s = 0.7 * self.cost_per_input_s + 0.3 * (dt / len(batch))
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
