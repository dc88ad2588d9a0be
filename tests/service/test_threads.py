"""Per-thread torch intra-op threads: the request thread's setting does not leak."""

from __future__ import annotations

import threading

import torch

from nmtune.service.ops.threads import compute_threads, set_this_thread, with_threads


def _in_new_thread(fn: object) -> dict[str, int]:
    out: dict[str, int] = {}

    def run() -> None:
        out["n"] = fn() if callable(fn) else torch.get_num_threads()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out


def test_set_this_thread_leaves_new_threads_alone() -> None:
    def body() -> int:
        before = _in_new_thread(None)["n"]
        set_this_thread(1)
        assert torch.get_num_threads() == 1
        assert _in_new_thread(None)["n"] == before
        return 0

    _in_new_thread(body)  # in a throwaway thread: the test process keeps its own setting


def test_with_threads_sets_the_calling_thread() -> None:
    got = _in_new_thread(with_threads(3, torch.get_num_threads))
    assert got["n"] == 3
    assert compute_threads(None) >= 1 and compute_threads(5) == 5
