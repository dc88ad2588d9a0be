"""auto's selection rules (best / one-se / cv) against each single candidate, MiniLM features.

    python benchmarks/bench_auto_cv.py --jobs 2            # 5 tasks, seed 0, 3 folds

Tasks, splits, subsampling and embeddings are those of ``bench_accuracy.py`` (65 / 10 / 25
stratified split seeded by the run seed; fortunes = its seeded 6,000-row subsample; MiniLM
vectors read back from the SQL cache). Each candidate of auto's default grid (lp, mlp, nmtune
paper-code, nmtune + robust overrides) is trained once on the train split (best epoch on the
validation split). ``best`` and ``one-se`` are read from those fits with the tuner's own
``select_candidate`` (training is deterministic per seed, so this is what ``fit`` does);
their time is the sum of the four fits. ``cv`` runs ``NMTuneClassifier(method="auto",
auto_rule="cv")`` for real (k-fold CV on train + validation, then the winner's single fit).
Output: benchmarks/results/auto_cv.md (raw numbers: benchmarks/.cache/auto_cv.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_data import (
    CACHE_DIR,
    DEFAULT_DATA,
    MINILM,
    CachedEmbedder,
    Texts,
    embed_tasks,
    load_tasks,
)
from bench_accuracy import RESULTS, fit_row, machine, make_split, score

TASKS = ["vader-movies", "vader-amazon", "vader-nyt", "vader-tweets", "fortunes"]
#: auto's default grid, in grid order (same resolved configs as the candidates).
SINGLES: list[tuple[str, dict[str, Any]]] = [
    ("lp", {"method": "lp"}),
    ("mlp", {"method": "mlp"}),
    ("nmtune", {"method": "nmtune", "preset": "paper-code"}),
    ("nmtune+robust", {"method": "nmtune", "preset": "robust"}),
]
RULES = ("best", "one-se", "cv")


def _row(model: Any, sp: Any, fit_s: float) -> dict[str, Any]:
    ood = [score(model, xo, yo)["accuracy"] for xo, yo in sp.ood.values()]
    return {
        "id": score(model, sp.x_te, sp.y_te)["accuracy"],
        "ood": float(np.mean(ood)) if ood else None,
        "fit_s": fit_s,
    }


def run_task(t: Texts, feats: dict[str, np.ndarray], seed: int, folds: int) -> dict[str, Any]:
    from nmtune.tuner import NMTuneClassifier
    from nmtune.tuner.auto import select_candidate

    sp = make_split(t, feats, seed)
    out: dict[str, Any] = {"task": t.name, "n_train": len(sp.y_tr), "n_val": len(sp.y_va)}
    singles: dict[str, dict[str, Any]] = {}
    val: list[tuple[float, float]] = []
    for name, kw in SINGLES:
        res = fit_row("tuner", kw, sp, seed)
        singles[name] = {"val": 100 * res["val_accuracy"], **_row(res["model"], sp, res["fit_s"])}
        val.append((res["val_accuracy"], res["val_macro_f1"]))
        print(
            f"  {t.name} {name:<14} ID {singles[name]['id']:5.1f} {res['fit_s']:6.1f}s", flush=True
        )
    out["singles"] = singles
    names = [n for n, _ in SINGLES]
    total = sum(s["fit_s"] for s in singles.values())
    autos: dict[str, dict[str, Any]] = {}
    for rule in ("best", "one-se"):
        pick = names[select_candidate(val, len(sp.y_va), rule)]
        autos[rule] = {**singles[pick], "fit_s": total, "picked": pick}
    t0 = time.perf_counter()
    clf = NMTuneClassifier(
        method="auto", random_state=seed, device="cpu", auto_rule="cv", auto_cv_folds=folds
    ).fit(sp.x_tr, sp.y_tr, X_val=sp.x_va, y_val=sp.y_va)
    fit_s = time.perf_counter() - t0
    picked = names[next(c["index"] for c in clf.candidates_ if c["selected"])]
    autos["cv"] = {**_row(clf, sp, fit_s), "picked": picked}
    # The refit winner must be the single fit of the same candidate (deterministic).
    autos["cv"]["same_as_single"] = autos["cv"]["id"] == singles[picked]["id"]
    out["cv_scores"] = {
        names[c["index"]]: [100 * s for s in c["cv_scores"]] for c in clf.candidates_
    }
    out["auto"] = autos
    print(f"  {t.name} auto cv -> {picked} ID {autos['cv']['id']:5.1f} {fit_s:6.1f}s", flush=True)
    return out


def _run(job: tuple[Any, ...]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return run_task(*job)


def _f(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def report(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    names = [n for n, _ in SINGLES]
    lines = [
        "# auto: selection rules best / one-se / cv vs each single candidate (MiniLM)",
        "",
        f"`{meta['command']}` — {meta['date']}, {meta['machine']}; seed {meta['seed']}, "
        f"{meta['folds']} folds, one torch thread per task.",
        "",
        "ID = test accuracy (%) of the training domain; OOD = mean accuracy over the other three "
        "VADER domains. gap = auto − best single method on that column (best single chosen "
        "with hindsight on the test set, so gap <= 0). Time = wall seconds of the whole auto fit "
        "(best / one-se: sum of the four candidate fits, which is what auto trains).",
        "",
        "| task | " + " | ".join(f"{n} ID" for n in names) + " | rule | pick | ID | gap ID "
        "| OOD | gap OOD | time s |",
        "|---|" + "---:|" * len(names) + "---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["singles"]
        best_id = max(v["id"] for v in s.values())
        oods = [v["ood"] for v in s.values() if v["ood"] is not None]
        best_ood = max(oods) if oods else None
        for i, rule in enumerate(RULES):
            a = r["auto"][rule]
            head = f"| {r['task']} | " + " | ".join(_f(s[n]["id"]) for n in names)
            if i:
                head = "| | " + " | ".join("" for _ in names)
            gap_ood = None if best_ood is None or a["ood"] is None else a["ood"] - best_ood
            lines.append(
                f"{head} | {rule} | {a['picked']} | {_f(a['id'])} | {a['id'] - best_id:+.1f} "
                f"| {_f(a['ood'])} | {'–' if gap_ood is None else f'{gap_ood:+.1f}'} "
                f"| {a['fit_s']:.0f} |"
            )
    lines += ["", "Mean gap over the tasks (ID; OOD over the 4 VADER tasks), and mean time:", ""]
    lines += ["| rule | mean gap ID | mean gap OOD | mean time s |", "|---|---:|---:|---:|"]
    for rule in RULES:
        gid, good, ts = [], [], []
        for r in results:
            s, a = r["singles"], r["auto"][rule]
            gid.append(a["id"] - max(v["id"] for v in s.values()))
            if a["ood"] is not None:
                good.append(a["ood"] - max(v["ood"] for v in s.values()))
            ts.append(a["fit_s"])
        lines.append(f"| {rule} | {np.mean(gid):+.2f} | {np.mean(good):+.2f} | {np.mean(ts):.0f} |")
    lines += [
        "",
        "CV fold accuracies (%) per candidate (train + validation, stratified, seeded):",
        "",
        "| task | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for r in results:
        cells = []
        for n in names:
            sc = r["cv_scores"][n]
            cells.append(f"{np.mean(sc):.1f} ({', '.join(f'{v:.1f}' for v in sc)})")
        lines.append(f"| {r['task']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Validation accuracy (%) of the single fits (what best / one-se select on):",
        "",
        "| task | " + " | ".join(names) + " | n_val |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for r in results:
        lines.append(
            f"| {r['task']} | "
            + " | ".join(_f(r["singles"][n]["val"]) for n in names)
            + f" | {r['n_val']} |"
        )
    same = all(r["auto"]["cv"]["same_as_single"] for r in results)
    lines += [
        "",
        f"cv's refit winner equals the single fit of the same candidate on every task: {same}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("NMTUNE_DATA", DEFAULT_DATA))
    )
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1, help="tasks run in parallel processes")
    ap.add_argument("--out", type=Path, default=RESULTS / "auto_cv.md")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    tasks = load_tasks(a.data_dir, a.tasks)
    from nmtune.adapters import build_backend

    feats = embed_tasks(CachedEmbedder(), build_backend(MINILM), tasks)
    jobs = [(tasks[n], feats[n], a.seed, a.folds) for n in a.tasks]
    t0 = time.perf_counter()
    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(a.jobs) as ex:
            results = list(ex.map(_run, jobs))
    else:
        results = [_run(j) for j in jobs]
    meta = {
        "command": "python benchmarks/bench_auto_cv.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seed": a.seed,
        "folds": a.folds,
        "wall_s": time.perf_counter() - t0,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(report(results, meta), encoding="utf-8")
    (CACHE_DIR / "auto_cv.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1), encoding="utf-8"
    )
    print(f"wrote {a.out} ({meta['wall_s']:.0f}s)")


if __name__ == "__main__":
    main()
