"""Ablations of the nmtune recipe on cheap tasks (default: VADER movies and tweets, MiniLM).

    python benchmarks/ablate.py [--tasks vader-movies vader-tweets] [--seeds 0 1]

Every variant is nmtune (paper-code preset) plus the overrides shown. The variant to adopt is
chosen by the mean *validation* accuracy (column `val`), never by the test or OOD columns;
those are printed so that the effect can be read, not to select. Writes
benchmarks/results/ablation.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_data import DEFAULT_DATA, MINILM, CachedEmbedder, embed_tasks, load_tasks
from bench_accuracy import RESULTS, machine, run_task, summarise

R0: dict[str, Any] = {"residual_init": 0.0, "feature_dropout": 0.5}
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("lp (reference)", {"method": "lp"}),
    ("mlp (reference)", {"method": "mlp"}),
    ("paper-code", {}),
    ("R0 = residual_init 0 + feature_dropout 0.5", R0),
    ("R0 + init_classifier_from_lp", {**R0, "init_classifier_from_lp": True}),
    ("R0 + hidden_ratio 1", {**R0, "hidden_ratio": 1.0}),
    ("R0 + weight_decay 0.05", {**R0, "weight_decay": 0.05}),
    ("R0 + batch 256", {**R0, "batch_size": 256}),
    ("R0 + w_mse 10", {**R0, "w_mse": 10.0}),
    ("R0 + layernorm", {**R0, "norm": "layernorm"}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tasks", nargs="+", default=["vader-movies", "vader-tweets"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    from nmtune.adapters import build_backend

    tasks = load_tasks(a.data_dir, a.tasks)
    feats = embed_tasks(CachedEmbedder(), build_backend(MINILM), tasks)
    rows = []
    for name, ov in VARIANTS:
        if a.only and name not in a.only:
            continue
        kw = dict(ov)
        kw.setdefault("method", "nmtune")
        rows.append((name, "tuner", kw))
    table: dict[str, dict[str, list[float]]] = {}
    for tname in a.tasks:
        res = run_task(tasks[tname], feats[tname], a.seeds, rows, with_spectra=True)
        for name, s in summarise(res).items():
            t = table.setdefault(
                name, {"val": [], "id": [], "ood": [], "sve": [], "lsvr": [], "s": []}
            )
            t["val"].append(float(np.mean(s["val"])))
            t["id"].append(float(np.mean(s["id_acc"])))
            t["ood"].append(float(np.mean(s["ood_acc"])))
            t["sve"].append(float(np.mean(s["sve"])))
            t["lsvr"].append(float(np.mean(s["lsvr"])))
            t["s"].append(float(np.mean(s["fit_s"])))
    lines = [
        "# Ablation of the nmtune recipe (MiniLM)",
        "",
        f"`python benchmarks/ablate.py --tasks {' '.join(a.tasks)} --seeds "
        f"{' '.join(map(str, a.seeds))}` on {datetime.now(UTC):%Y-%m-%d %H:%M UTC} "
        f"({machine()}).",
        "",
        "nmtune paper-code + the overrides named; mean over tasks and seeds; accuracy in %. "
        "Selection rule: highest `val` (validation split of the training domain). ID/OOD are "
        "shown for reading only.",
        "",
        "| variant | val | ID test | OOD avg | "
        + " | ".join(f"val {t}" for t in a.tasks)
        + " | "
        + " | ".join(f"OOD {t}" for t in a.tasks)
        + " | SVE | LSVR | fit s |",
        "|" + "---|" * (7 + 2 * len(a.tasks)),
    ]
    for name, t in table.items():
        lines.append(
            f"| {name} | {np.mean(t['val']):.2f} | {np.mean(t['id']):.2f} | "
            f"{np.mean(t['ood']):.2f} | "
            + " | ".join(f"{v:.1f}" for v in t["val"])
            + " | "
            + " | ".join(f"{v:.1f}" for v in t["ood"])
            + f" | {np.mean(t['sve']):.3f} | {np.mean(t['lsvr']):.3f} | {np.mean(t['s']):.1f} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ablation_{'_'.join(a.tasks)}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
