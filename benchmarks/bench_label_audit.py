"""Label-noise audit benchmark (issue 11): flip training labels, audit, train through it.

For each task (VADER movies / tweets / amazon / nyt, WordNet, fortunes; MiniLM embeddings
through the project's SQL embedding cache, a seeded subsample of ``--max-per-task`` rows),
a seeded stratified 75 / 25 train / test split; then for each noise setting (uniform: a
flipped label becomes one of the other classes at random; class-conditional: class c flips to
class c+1 at a rate that differs per class, mean = the nominal rate), seeded:

- ranking: AUROC and average precision of ``tuner.audit.audit_labels(...).scores`` against
  the truly flipped rows, next to the anchor (out-of-fold self-confidence 1 - p(given) of
  scikit-learn's ``LogisticRegression()`` on 5 stratified folds: what cleanlab ranks by);
- flagged: precision and recall; estimated noise rate vs the true one, next to confident
  learning's calibrated-joint estimate (the audit's estimate before the anchors) and the naive
  disagreement rate (anchor argmax != given label);
- heads (``--heads-at`` rates): test accuracy of tuner's lr head on clean labels, on noisy
  labels, on noisy labels without the flagged rows; lp with the generalized cross entropy on
  noisy labels (with / without the flagged rows); scikit-learn LogisticRegression() on the
  noisy labels. The tuner lr heads use the audit's C (chosen by CV on the noisy labels).
- cleanlab's ``find_label_issues`` on the same out-of-fold probabilities when cleanlab is
  installed (benchmark extra only; never a runtime dependency).

Run: ``python benchmarks/bench_label_audit.py`` (writes benchmarks/results/label_audit.md
and .json; partial results are written after every setting).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_data import DEFAULT_DATA

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: the issue's anchor on the full VADER movies set (AUROC of OOF self-confidence, uniform)
ISSUE_ANCHOR = {0.1: 0.874, 0.2: 0.824, 0.4: 0.686}

logger = logging.getLogger("bench_label_audit")


@dataclass
class Setting:
    kind: str  # "uniform" | "class-conditional"
    rate: float

    @property
    def name(self) -> str:
        return f"{self.kind} {round(self.rate * 100)}%"


def flip_labels(
    y: np.ndarray, n_classes: int, setting: Setting, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, flipped mask); seeded."""
    rng = np.random.default_rng(seed)
    if setting.kind == "uniform":
        rates = np.full(n_classes, setting.rate)
        target = (y + rng.integers(1, n_classes, y.size)) % n_classes
    else:  # class-conditional: c -> c + 1 at rate r * w_c, w_c from 0.5 to 1.5, mean 1
        w = rng.permutation(np.linspace(0.5, 1.5, n_classes)) if n_classes > 1 else np.ones(1)
        rates = np.clip(setting.rate * w, 0.0, 0.95)
        target = (y + 1) % n_classes
    flip = rng.random(y.size) < rates[y]
    return np.where(flip, target, y), flip


def split(y: np.ndarray, seed: int, test: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tr: list[np.ndarray] = []
    te: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te = round(float(test * idx.size))
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def anchor_probs(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold LogisticRegression() probabilities (5 stratified folds)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    out: np.ndarray = cross_val_predict(
        LogisticRegression(max_iter=1000), x, y, cv=cv, method="predict_proba"
    )
    return out


def confident_joint_rate(cj: np.ndarray, counts: np.ndarray) -> float:
    """The noise rate of confident learning's calibrated joint (Northcutt et al. eq. 3; the
    audit's estimate before the anchors): each row of the confident joint scaled to the
    given class's size, 1 - trace / n. A class with no confident row counts as clean."""
    rows = cj.sum(axis=1).astype(np.float64)
    cal = np.where(
        rows[:, None] > 0, cj / np.maximum(rows, 1.0)[:, None] * counts[:, None], np.diag(counts)
    )
    return float(1.0 - np.trace(cal) / cal.sum())


def cleanlab_flags(y: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    try:
        from cleanlab.filter import find_label_issues  # type: ignore[import-not-found]
    except ImportError:
        return None
    out: np.ndarray = find_label_issues(y, probs)
    return out


def heads(
    x_tr: np.ndarray,
    y_clean: np.ndarray,
    y_noisy: np.ndarray,
    flagged: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    c: float,
    seed: int,
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from nmtune.tuner import NMTuneClassifier
    from nmtune.tuner.audit import choose_audit_use

    keep = ~flagged

    def acc(clf: Any, xs: np.ndarray, ys: np.ndarray) -> float:
        clf.fit(xs, ys)
        return float((clf.predict(x_te) == y_te).mean())

    def lr() -> Any:  # as the service trains it: C by CV on the rows it is given
        return NMTuneClassifier(method="lr", random_state=seed)

    def gce() -> Any:
        return NMTuneClassifier(
            method="lp", loss="gce", lp_epochs=10, val_fraction=0.0, random_state=seed
        )

    out: dict[str, Any] = {
        # the clean head chooses its own C by CV on the clean labels
        "lr_clean": acc(NMTuneClassifier(method="lr", random_state=seed), x_tr, y_clean),
        "lr_noisy": acc(lr(), x_tr, y_noisy),
        "lr_audit": acc(lr(), x_tr[keep], y_noisy[keep]),
        "lp_gce_noisy": acc(gce(), x_tr, y_noisy),
        "lp_gce_audit": acc(gce(), x_tr[keep], y_noisy[keep]),
        "sklearn_noisy": acc(LogisticRegression(max_iter=1000), x_tr, y_noisy),
    }
    # audit_use auto (the service's default): nested CV on the noisy labels decides
    t0 = time.perf_counter()
    choice = choose_audit_use(x_tr, y_noisy, c=c, random_state=seed, c_by_cv=True)
    excl = choice.use == "exclude_flagged"
    out.update(
        {
            "auto_use": choice.use,
            "auto_gain": choice.gain,
            "auto_gain_se": choice.gain_se,
            "auto_s": round(time.perf_counter() - t0, 1),
            "lr_audit_auto": out["lr_audit"] if excl else out["lr_noisy"],
            "lp_gce_audit_auto": out["lp_gce_audit"] if excl else out["lp_gce_noisy"],
        }
    )
    # method auto through the audit as the service trains it (auto_noise_robust on), on the
    # rows audit_use auto keeps; its grid cut to lr (so the C is auto's own CV choice on those
    # rows, not the audit's) and the lp + GCE candidate it adds, for the benchmark's time
    rows = keep if excl else np.ones(y_noisy.size, dtype=bool)
    t0 = time.perf_counter()
    nr = NMTuneClassifier(
        method="auto", auto_candidates=[{"method": "lr"}], auto_noise_robust=True, random_state=seed
    )
    out["auto_nr"] = acc(nr, x_tr[rows], y_noisy[rows])
    out["auto_nr_s"] = round(time.perf_counter() - t0, 1)
    out["auto_nr_pick"] = "lp+gce" if nr.config_.loss == "gce" else nr.method_
    out["auto_nr_cv"] = {
        ("lp+gce" if cand["method"] == "lp" else cand["method"]): cand.get("cv_mean")
        for cand in nr.candidates_
    }
    return out


def run_setting(
    task: str,
    x: np.ndarray,
    labels: np.ndarray,
    setting: Setting,
    seed: int,
    with_heads: bool,
    method: str,
) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from nmtune.tuner.audit import audit_labels

    classes, y = np.unique(labels, return_inverse=True)
    k = len(classes)
    tr, te = split(y, seed)
    y_tr = y[tr]
    noisy, flip = flip_labels(y_tr, k, setting, seed + 1)
    t0 = time.perf_counter()
    audit = audit_labels(x[tr], noisy, method=method, random_state=seed)
    audit_s = time.perf_counter() - t0
    p_anchor = anchor_probs(x[tr], noisy, seed)
    anchor_scores = 1.0 - p_anchor[np.arange(noisy.size), noisy]
    fl = audit.flagged
    row: dict[str, Any] = {
        "task": task,
        "setting": setting.name,
        "kind": setting.kind,
        "rate": setting.rate,
        "n_train": int(tr.size),
        "n_test": int(te.size),
        "n_classes": k,
        "true_noise": float(flip.mean()),
        "auroc": float(roc_auc_score(flip, audit.scores)),
        "ap": float(average_precision_score(flip, audit.scores)),
        "anchor_auroc": float(roc_auc_score(flip, anchor_scores)),
        "anchor_ap": float(average_precision_score(flip, anchor_scores)),
        "precision": float(flip[fl].mean()) if fl.any() else float("nan"),
        "recall": float(fl[flip].mean()) if flip.any() else float("nan"),
        "n_flagged": int(fl.sum()),
        "est_noise": float(audit.noise_rate),
        "cj_noise": confident_joint_rate(audit.confident_joint, audit.class_counts),
        "naive_noise": float((p_anchor.argmax(1) != noisy).mean()),
        "c": audit.c,
        "audit_s": round(audit_s, 1),
    }
    cl = cleanlab_flags(noisy, audit.probabilities)
    if cl is not None:
        row["cleanlab_precision"] = float(flip[cl].mean()) if cl.any() else float("nan")
        row["cleanlab_recall"] = float(cl[flip].mean())
    if with_heads:
        row["heads"] = heads(x[tr], y_tr, noisy, fl, x[te], y[te], audit.c, seed)
    return row


def _f(v: Any, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def _diff(h: dict[str, Any], a: str, b: str) -> str:
    return "-" if h.get(a) is None else f"{h[a] - h[b]:+.3f}"


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        "# Label-noise audit (issue 11)",
        "",
        f"Run: {meta['when']}, {meta['machine']}. MiniLM (all-MiniLM-L6-v2) embeddings through "
        f"the SQL cache; each task a seeded subsample of at most {meta['max_per_task']} rows "
        "(2-core budget; classes with < 10 rows in it dropped), 75 / 25 stratified train / "
        f"test; labels of the train part flipped (seed {meta['seed']}). Audit: "
        f"`audit_labels(method={meta['method']!r})` defaults (5 folds, 2 fold assignments, "
        "C by 5-fold CV over 5 values in [1e-2, 1e2]). Anchor: out-of-fold self-confidence "
        "1 - p(given) of scikit-learn `LogisticRegression()` (5 stratified folds). "
        f"cleanlab: {meta['cleanlab']}.",
        "",
        "## Ranking and estimate",
        "",
        "| task | noise | n train | AUROC | anchor AUROC | diff | AP | anchor AP | "
        "flag precision | flag recall | est. noise | true noise | confident joint | naive "
        "| audit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['task']} | {r['setting']} | {r['n_train']} | {_f(r['auroc'])} | "
            f"{_f(r['anchor_auroc'])} | {r['auroc'] - r['anchor_auroc']:+.3f} | {_f(r['ap'])} | "
            f"{_f(r['anchor_ap'])} | {_f(r['precision'], 2)} | {_f(r['recall'], 2)} | "
            f"{_f(r['est_noise'])} | {_f(r['true_noise'])} | {_f(r.get('cj_noise'))} | "
            f"{_f(r['naive_noise'])} | {r['audit_s']} |"
        )
    with_cl = [r for r in rows if "cleanlab_precision" in r]
    if with_cl:
        out += [
            "",
            "## Flags: nmtune vs cleanlab on the same out-of-fold probabilities",
            "",
            "| task | noise | nmtune precision | nmtune recall | cleanlab precision "
            "| cleanlab recall |",
            "|---|---|---|---|---|---|",
        ]
        for r in with_cl:
            out.append(
                f"| {r['task']} | {r['setting']} | {_f(r['precision'], 2)} | "
                f"{_f(r['recall'], 2)} | {_f(r['cleanlab_precision'], 2)} | "
                f"{_f(r['cleanlab_recall'], 2)} |"
            )
    with_heads = [r for r in rows if "heads" in r]
    if with_heads:
        out += [
            "",
            "## Test accuracy of heads trained on the noisy labels",
            "",
            "lr clean: tuner's lr on the clean labels (its own C by CV); lr noisy: tuner's lr "
            "on the noisy labels (its own C by CV, as the service trains an lr head); + excl: "
            "without the audit's flagged rows (C by CV on the rows kept); + auto: `audit_use` "
            "auto (the service's default: nested CV on the noisy labels, each arm choosing its "
            "own C, see `tuner.audit.choose_audit_use` with `c_by_cv`, decides between the "
            "two; `auto use` is its "
            "choice, `gain` its estimated gain in noisy-label accuracy); lp+GCE: linear probe "
            "with the generalized cross entropy (q = 0.7, 10 epochs), the same three ways; "
            "sklearn: `LogisticRegression()` on the noisy labels. The last two columns compare "
            "the head declared in advance, lr + auto. auto+NR: `method` auto trained through "
            "the audit as the service does it (`auto_noise_robust` on: lp + GCE grown from lr "
            "added as a candidate) on the rows `audit_use` auto keeps, its grid cut to lr and "
            "that candidate for time; `pick` is what its CV chose.",
            "",
            "| task | noise | lr clean | lr noisy | lr + excl | lr + auto | lp+GCE noisy "
            "| lp+GCE + excl | lp+GCE + auto | auto use | gain | sklearn noisy "
            "| lr+auto - clean | lr+auto - sklearn | auto+NR | pick | auto+NR - clean "
            "| auto+NR - sklearn |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in with_heads:
            h = r["heads"]
            out.append(
                f"| {r['task']} | {r['setting']} | {_f(h['lr_clean'])} | {_f(h['lr_noisy'])} | "
                f"{_f(h['lr_audit'])} | {_f(h['lr_audit_auto'])} | {_f(h['lp_gce_noisy'])} | "
                f"{_f(h['lp_gce_audit'])} | {_f(h['lp_gce_audit_auto'])} | {h['auto_use']} | "
                f"{h['auto_gain']:+.3f} | {_f(h['sklearn_noisy'])} | "
                f"{h['lr_audit_auto'] - h['lr_clean']:+.3f} | "
                f"{h['lr_audit_auto'] - h['sklearn_noisy']:+.3f} | {_f(h.get('auto_nr'))} | "
                f"{h.get('auto_nr_pick', '-')} | {_diff(h, 'auto_nr', 'lr_clean')} | "
                f"{_diff(h, 'auto_nr', 'sklearn_noisy')} |"
            )
    out += ["", "## Against the issue's targets", "", *targets(rows), ""]
    return "\n".join(out)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for kind in ("uniform", "class-conditional"):
        for rate in (0.1, 0.2, 0.4):
            sel = [r for r in rows if r["kind"] == kind and abs(r["rate"] - rate) < 1e-9]
            if not sel:
                continue
            d = np.array([r["auroc"] - r["anchor_auroc"] for r in sel])
            e = np.array([abs(r["est_noise"] - r["true_noise"]) for r in sel])
            e_cj = np.array([abs(r.get("cj_noise", np.nan) - r["true_noise"]) for r in sel])
            lines.append(
                f"- {kind} {round(rate * 100)}% ({len(sel)} tasks): AUROC - anchor mean "
                f"{d.mean():+.3f} (target >= +0.02: {'met' if d.mean() >= 0.02 else 'NOT met'}), "
                f"min {d.min():+.3f} (target >= 0: {'met' if d.min() >= 0 else 'NOT met'}); "
                f"|estimated - true noise| mean {e.mean():.3f}, max {e.max():.3f} "
                f"(target <= 0.03: {'met' if e.max() <= 0.03 else 'NOT met'}; the calibrated "
                f"confident joint: mean {e_cj.mean():.3f}, max {e_cj.max():.3f})"
            )
    for rate, tgt, base in (
        (0.2, "within 2 points of the clean head", "lr_clean"),
        (0.4, ">= 2 points above sklearn LR on noisy labels", "sklearn_noisy"),
    ):
        sel = [r for r in rows if "heads" in r and abs(r["rate"] - rate) < 1e-9]
        if not sel:
            continue
        for head, name in (("lr_audit_auto", "lr + audit auto"), ("auto_nr", "auto+NR")):
            if any(head not in r["heads"] for r in sel):
                continue
            d = np.array([r["heads"][head] - r["heads"][base] for r in sel])
            ok = d.min() >= -0.02 if base == "lr_clean" else d.min() >= 0.02
            lines.append(
                f"- heads at {round(rate * 100)}% ({len(sel)} settings): {name} {tgt}: "
                f"mean {d.mean():+.3f}, min {d.min():+.3f} ({'met' if ok else 'NOT met'})"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument(
        "--tasks",
        default="vader-movies,vader-tweets,wordnet,fortunes,vader-amazon,vader-nyt",
    )
    ap.add_argument("--rates", default="0.1,0.2,0.4")
    ap.add_argument("--kinds", default="uniform,class-conditional")
    ap.add_argument("--heads-at", default="0.2,0.4", help="rates at which heads are trained")
    ap.add_argument("--max-per-task", type=int, default=1200)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="label_audit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("nmtune.tuner").setLevel(logging.WARNING)
    from label_audit_data import load_embedded

    tasks = args.tasks.split(",")
    data = load_embedded(args.data, tasks, args.max_per_task)
    rates = [float(r) for r in args.rates.split(",")]
    heads_at = {float(r) for r in args.heads_at.split(",") if r}
    try:
        import cleanlab  # type: ignore[import-not-found]

        cl = f"cleanlab {cleanlab.__version__} `find_label_issues` on our out-of-fold probabilities"
    except ImportError:
        cl = "not installed (optional; the flag columns then show nmtune only)"
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": "2 shared CPU cores",
        "max_per_task": args.max_per_task,
        "seed": args.seed,
        "method": args.method,
        "cleanlab": cl,
    }
    rows: list[dict[str, Any]] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        x, labels = data[task]
        for kind in args.kinds.split(","):
            for rate in rates:
                s = Setting(kind, rate)
                row = run_setting(task, x, labels, s, args.seed, rate in heads_at, args.method)
                rows.append(row)
                logger.info(
                    "%s %s: AUROC %.3f (anchor %.3f) est %.3f true %.3f (%ss)",
                    task,
                    s.name,
                    row["auroc"],
                    row["anchor_auroc"],
                    row["est_noise"],
                    row["true_noise"],
                    row["audit_s"],
                )
                (RESULTS / f"{args.out}.json").write_text(json.dumps(rows, indent=1))
                (RESULTS / f"{args.out}.md").write_text(report(rows, meta))


if __name__ == "__main__":
    main()
