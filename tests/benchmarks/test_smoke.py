"""Smoke run of the benchmark scripts on tiny synthetic data (no ../shared/data, no models)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def _task() -> tuple[Any, dict[str, np.ndarray]]:
    from accuracy_data import Texts

    rng = np.random.default_rng(0)
    n, d = 240, 16
    y = np.array(["neg", "pos"])[rng.integers(0, 2, n)]
    shift = np.where(y == "pos", 1.0, -1.0)[:, None]
    x = (rng.normal(size=(n, d)) + shift).astype(np.float32)
    yo = np.array(["neg", "pos"])[rng.integers(0, 2, 80)]
    xo = (rng.normal(size=(80, d)) + 0.5 * np.where(yo == "pos", 1.0, -1.0)[:, None]).astype(
        np.float32
    )
    t = Texts("toy", [str(i) for i in range(n)], y.tolist())
    t.ood["other"] = ([str(i) for i in range(80)], yo.tolist())
    return t, {"id": x, "other": xo}


def test_split_is_stratified_and_disjoint() -> None:
    from accuracy_data import split_indices

    y = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 2)
    tr, va, te = split_indices(y, seed=3)
    assert len(set(tr) | set(va) | set(te)) == y.size
    assert not (set(tr) & set(va)) and not (set(tr) & set(te)) and not (set(va) & set(te))
    assert {"a", "b", "c"} <= set(y[tr].tolist())
    assert abs(len(tr) / y.size - 0.65) < 0.05


def test_accuracy_pipeline_writes_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_accuracy as ba

    monkeypatch.setattr(ba, "RESULTS", tmp_path)
    t, feats = _task()
    fast = {"epochs": 2, "lp_epochs": 2, "batch_size": 32}
    rows = [
        ("sklearn LR", "sklearn", {}),
        ("lp", "tuner", {"method": "lp", **fast}),
        ("nmtune robust", "tuner", {"method": "nmtune", "preset": "robust", **fast}),
    ]
    res = ba.run_task(t, feats, [0, 1], rows)
    rec = res["seeds"]["0"]["rows"]
    assert rec["sklearn LR"]["id"]["accuracy"] > 80
    assert set(rec["lp"]["ood"]) == {"other"}
    t.ood.clear()  # a task without OOD set (like fortunes) in the same report
    t.name = "toy-id-only"
    res2 = ba.run_task(t, {"id": feats["id"]}, [0], rows[:2])
    assert res2["seeds"]["0"]["rows"]["lp"]["ood"] == {}
    p = ba.write_report([res, res2], "toy", {"command": "x", "date": "d", "machine": "m"})
    text = p.read_text()
    assert "### toy" in text and "nmtune robust" in text
    assert (tmp_path / "accuracy_toy.png").exists() and (tmp_path / "spectra_toy.png").exists()


def test_cache_round_sqlite(tmp_path: Path) -> None:
    import bench_perf

    r = bench_perf._cache_round(f"sqlite:///{tmp_path}/c.db", 300, 8, 128)
    assert r["write_s"] > 0 and r["read_s"] > 0
    assert r["snap_write_s"] > 0 and r["snap_read_best_s"] <= r["snap_read_s"]


def test_cache_round_postgres_equals_sqlite_shape(tmp_path: Path) -> None:
    import bench_perf

    r = bench_perf._cache_round(f"sqlite:///{tmp_path}/c2.db", 200, 8, 64, legacy=True)
    assert r["write_s"] > 0 and r["read_s"] > 0 and r["legacy_read_s"] > 0


def test_gpu_bench_small_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    import bench_gpu

    argv = sys.argv
    sys.argv = ["bench_gpu.py", "--small", "--device", "cpu", "--epochs", "1", "--no-sklearn"]
    sys.argv += ["--heads", "lr,auto"]
    try:
        bench_gpu.main()
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert "| lr (C=1, one fit) |" in out and "| auto -> " in out
    assert '"device": "cpu"' in out


def test_byo_bench_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench_byo

    monkeypatch.setenv("BENCH_TMP", str(tmp_path))
    r = bench_byo.run(600, 64, "lr", None, {"lr_c": 1.0})  # 10 classes: separable in 64-d
    assert r["rows"] == 600 and r["test_accuracy"] > 0.5
    assert r["peak_rss_mib"] > 0 and set(r["train_job_s"]) == {"load", "fit", "evaluate"}


def test_learning_curve_units_and_summary() -> None:
    import bench_learning_curve as lc

    _, feats = _task()
    t, _ = _task()
    lc.DATA["toy"] = {
        "X": feats["id"],
        "y": np.asarray(t.labels),
        "ood": {"other": (feats["other"], np.asarray(t.ood["other"][1]))},
        "groups": {},
    }
    pool = lc.pool_subset(np.asarray(t.labels), np.arange(240), "8", seed=0)
    assert pool.size == 16 and sorted(
        np.unique(np.asarray(t.labels)[pool], return_counts=True)[1]
    ) == [8, 8]
    lc.warm_up()  # the pool's initializer: untimed one-off fits of both kinds
    rows = [lc.run_unit(("toy", 0, "8", m)) for m in ("lrcv", "lr", "auto")]
    assert all(r["id"] > 0.7 and r["ood"] is not None for r in rows)
    assert rows[2]["picked"] == "lr"  # below auto_min_per_class only lr is fitted
    text = lc.summarise(rows, ["lrcv", "lr", "auto"])
    assert "| toy | 8 | 16 |" in text and "## auto" in text


def test_label_audit_flips_and_report(tmp_path: Path) -> None:
    import bench_label_audit as bla

    y = np.repeat(np.arange(3), 200)
    for kind in ("uniform", "class-conditional"):
        noisy, flip = bla.flip_labels(y, 3, bla.Setting(kind, 0.2), seed=1)
        assert abs(flip.mean() - 0.2) < 0.05
        assert (noisy[flip] != y[flip]).all() and (noisy[~flip] == y[~flip]).all()
        if kind == "class-conditional":  # c -> c + 1, at rates that differ per class
            assert ((noisy[flip] - y[flip]) % 3 == 1).all()
            rates = [flip[y == c].mean() for c in range(3)]
            assert max(rates) - min(rates) > 0.1
    rng = np.random.default_rng(0)
    labels = np.array(["neg", "pos"])[rng.integers(0, 2, 240)]
    x = (rng.normal(size=(240, 8)) + 2.0 * (labels == "pos")[:, None]).astype(np.float32)
    row = bla.run_setting(
        "toy", x, labels, bla.Setting("uniform", 0.2), 0, with_heads=True, method="auto"
    )
    assert row["n_train"] == 180 and 0.5 < row["auroc"] <= 1.0 and row["anchor_auroc"] > 0.5
    assert set(row["heads"]) == {
        "lr_clean",
        "lr_noisy",
        "lr_audit",
        "lp_gce_noisy",
        "lp_gce_audit",
        "sklearn_noisy",
        "auto_use",
        "auto_gain",
        "auto_gain_se",
        "auto_s",
        "lr_audit_auto",
        "lp_gce_audit_auto",
        "auto_nr",
        "auto_nr_s",
        "auto_nr_pick",
        "auto_nr_cv",
    }
    h = row["heads"]
    key = "audit" if h["auto_use"] == "exclude_flagged" else "noisy"
    assert h["lr_audit_auto"] == h[f"lr_{key}"] and h["lp_gce_audit_auto"] == h[f"lp_gce_{key}"]
    # auto through the audit scores lr and the noise-robust lp + GCE candidate, and picks one
    assert set(h["auto_nr_cv"]) == {"lr", "lp+gce"} and h["auto_nr_pick"] in h["auto_nr_cv"]
    assert 0.5 < h["auto_nr"] <= 1.0
    md = bla.report(
        [row],
        {
            "when": "now",
            "machine": "m",
            "max_per_task": 240,
            "seed": 0,
            "method": "auto",
            "cleanlab": "no",
        },
    )
    assert "| toy | uniform 20% |" in md and "Against the issue's targets" in md


def test_train_speed_rows_before_and_after() -> None:
    import bench_train_speed as bts

    d = bts.synthetic(300, 16, 0, classes=3)
    lines = bts.run([d], ["lp"], {d.name: 0}, None)
    assert len(lines) == 4 and "sklearn LogisticRegression" in lines[2] and "| lp |" in lines[3]
