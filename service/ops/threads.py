"""Torch intra-op threads, set per thread.

With torch's OpenMP backend (and MKL's thread-local setting) ``torch.set_num_threads`` applies
to the calling thread; it also becomes the start value of threads created later. So each kind
of work sets what it needs in its own thread: the request thread runs small inference batches
with few threads (several threads on a tiny matrix only contend with request handling and
the load around it), training and large batches use every core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def compute_threads(setting: int | None) -> int:
    return setting or os.cpu_count() or 1


def with_threads(n: int, fn: Callable[[], T]) -> Callable[[], T]:
    """Wrap ``fn`` so that it runs with ``n`` intra-op threads in whatever thread calls it."""

    def run() -> T:
        torch.set_num_threads(n)
        return fn()

    return run


def set_this_thread(n: int) -> None:
    """Give the calling thread ``n`` intra-op threads without changing the start value of
    threads created later (a short-lived thread puts the previous default back)."""
    default = torch.get_num_threads()
    torch.set_num_threads(n)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
