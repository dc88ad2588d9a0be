"""Tasks and cached MiniLM embeddings for ``bench_label_audit.py``.

Loads VADER (each domain), WordNet and fortunes through :func:`accuracy_data.load_tasks`,
takes a seeded subsample of each (the 2-core budget: ``--max-per-task`` rows), and embeds it
through the project's own SQL embedding cache (:class:`accuracy_data.CachedEmbedder`), so a
rerun reads the vectors back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from accuracy_data import MINILM, CachedEmbedder, Texts, load_tasks

TASKS = ("vader-movies", "vader-tweets", "vader-amazon", "vader-nyt", "wordnet", "fortunes")
SUBSAMPLE_SEED = 2026


def subsample(t: Texts, max_rows: int, min_per_class: int = 10) -> tuple[list[str], np.ndarray]:
    """A seeded subsample of at most ``max_rows`` rows; classes with fewer than
    ``min_per_class`` rows in it are dropped (too small to audit with 5 folds)."""
    y = np.asarray(t.labels)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    pick = np.sort(rng.permutation(y.size)[:max_rows])
    ys = y[pick]
    keep_classes = [c for c in np.unique(ys) if int((ys == c).sum()) >= min_per_class]
    pick = pick[np.isin(ys, keep_classes)]
    return [t.texts[i] for i in pick], y[pick]


def load_embedded(
    data_dir: Path, tasks: list[str], max_per_task: int, embedder: CachedEmbedder | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{task: (X (n, 384) float32, labels (n,) str)} embedded with MiniLM through the cache."""
    from nmtune.adapters import build_backend

    texts = load_tasks(data_dir, tasks)
    embedder = embedder or CachedEmbedder()
    backend = build_backend(MINILM)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in tasks:
        tx, y = subsample(texts[name], max_per_task)
        x = embedder.embed(backend, tx, name)
        out[name] = (np.asarray(x, dtype=np.float32), y)
    return out


if __name__ == "__main__":  # warm the cache: python benchmarks/label_audit_data.py
    import sys

    from accuracy_data import DEFAULT_DATA

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for k, (x, y) in load_embedded(DEFAULT_DATA, list(TASKS), n).items():
        print(k, x.shape, len(set(y.tolist())))
