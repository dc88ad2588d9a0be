"""Plan requests: contiguous batches bounded by input count and total tokens."""

from __future__ import annotations

from collections.abc import Sequence

from .tokenizer import TokenCounter


def token_counts(texts: Sequence[str], counter: TokenCounter, need_exact_above: int) -> list[int]:
    """Token count per text, or its UTF-8 byte length when that bound is already small enough.

    A byte-level BPE never emits more tokens than bytes, so a text whose byte length is
    <= ``need_exact_above`` is certainly within the limits and is not tokenised (fast path).
    """
    counts = [len(t.encode("utf-8")) for t in texts]
    slow = [i for i, c in enumerate(counts) if c > need_exact_above]
    if slow:
        exact = counter.count([texts[i] for i in slow])
        for i, c in zip(slow, exact, strict=True):
            counts[i] = c
    return counts


def plan_batches(
    counts: Sequence[int], max_inputs: int, max_tokens: int | None
) -> list[tuple[int, int]]:
    """Split ``range(len(counts))`` into contiguous [start, stop) slices within both limits.

    A single input larger than ``max_tokens`` gets its own batch (the caller enforces the
    per-input limit before planning).
    """
    batches: list[tuple[int, int]] = []
    start, tokens = 0, 0
    for i, c in enumerate(counts):
        n = i - start
        if n and (n >= max_inputs or (max_tokens is not None and tokens + c > max_tokens)):
            batches.append((start, i))
            start, tokens = i, 0
        tokens += c
    if start < len(counts):
        batches.append((start, len(counts)))
    return batches
