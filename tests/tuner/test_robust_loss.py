"""Noise-robust classification losses (generalized and symmetric cross entropy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nmtune.tuner import ConfigError, NMTuneClassifier, resolve_config
from nmtune.tuner.budget import training_work
from nmtune.tuner.config import NOISE_ROBUST_CANDIDATE, HeadConfig
from nmtune.tuner.losses import classification_loss


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 3, generator=g), torch.randint(0, 3, (16,), generator=g)


def test_ce_is_cross_entropy() -> None:
    logits, y = _batch()
    cfg = resolve_config("lp", overrides={})
    assert torch.allclose(classification_loss(logits, y, cfg), F.cross_entropy(logits, y))


def test_gce_limits_and_value() -> None:
    logits, y = _batch()
    p_y = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    mae = classification_loss(
        logits, y, resolve_config("lp", overrides={"loss": "gce", "gce_q": 1.0})
    )
    assert torch.allclose(mae, (1 - p_y).mean())
    tiny = resolve_config("lp", overrides={"loss": "gce", "gce_q": 1e-4})
    assert torch.allclose(
        classification_loss(logits, y, tiny), F.cross_entropy(logits, y), atol=1e-3
    )
    q7 = resolve_config("lp", overrides={"loss": "gce"})
    assert torch.allclose(classification_loss(logits, y, q7), ((1 - p_y**0.7) / 0.7).mean())


def test_sce_value_and_class_weights() -> None:
    logits, y = _batch()
    p_y = torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    cfg = resolve_config("lp", overrides={"loss": "sce", "sce_alpha": 0.5, "sce_beta": 2.0})
    ce_rows = F.cross_entropy(logits, y, reduction="none")
    want = 0.5 * ce_rows + 2.0 * 4.0 * (1 - p_y)
    assert torch.allclose(classification_loss(logits, y, cfg), want.mean(), atol=1e-6)
    w = torch.tensor([1.0, 2.0, 0.5])
    got = classification_loss(logits, y, cfg, class_weight=w)
    assert torch.allclose(got, (w[y] * want).sum() / w[y].sum(), atol=1e-6)
    ce = resolve_config("lp", overrides={})
    assert torch.allclose(
        classification_loss(logits, y, ce, w), F.cross_entropy(logits, y, weight=w)
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"loss": "focal"}, "loss"), ({"gce_q": 0.0}, "gce_q"), ({"sce_beta": -1}, "sce_beta")],
)
def test_bad_loss_settings(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config("nmtune", overrides=overrides)
    assert err.value.field == field


def test_record_says_which_loss() -> None:
    cfg = resolve_config("nmtune", overrides={"loss": "gce"})
    assert cfg.loss == "gce" and any(d.startswith("loss='gce'") for d in cfg.deviations)
    lr = resolve_config("lr", overrides={"loss": "sce"})
    assert any("no effect on lr" in d for d in lr.deviations)


def test_robust_loss_trains_through_flipped_labels() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 8)) + 2.0 * (2 * y[:, None] - 1)).astype(np.float32)
    noisy = np.where(rng.random(n) < 0.3, 1 - y, y)
    fast = {"epochs": 3, "lp_epochs": 3, "min_steps": 60, "val_fraction": 0.0}
    for loss in ("gce", "sce"):
        clf = NMTuneClassifier(method="lp", loss=loss, random_state=0, **fast)
        clf.fit(x, noisy)
        assert clf.config_.loss == loss and clf.config_dict_["loss"] == loss
        assert (clf.predict(x) == y).mean() > 0.9


def test_auto_noise_robust_adds_the_gce_candidate_second() -> None:
    cfg = resolve_config("auto", overrides={"auto_noise_robust": True})
    grid = cfg.candidate_overrides()
    assert grid[1] == dict(NOISE_ROBUST_CANDIDATE) and len(grid) == len(cfg.auto_candidates) + 1
    assert [dict(c) for c in resolve_config("auto").auto_candidates] == [grid[0], *grid[2:]]
    # the record keeps the grid as given; the flag re-adds the candidate on reload
    assert cfg.to_dict()["auto_candidates"] == [grid[0], *grid[2:]]
    assert HeadConfig.from_dict(cfg.to_dict()).candidate_overrides() == grid
    # off by default, and not added to a grid that already has a noise-robust loss
    assert all("loss" not in c for c in resolve_config("auto").candidate_overrides())
    own = [{"method": "lr"}, {"method": "lp", "loss": "sce"}]
    mine = resolve_config("auto", overrides={"auto_noise_robust": True, "auto_candidates": own})
    assert mine.candidate_overrides() == own
    with pytest.raises(ConfigError) as err:
        resolve_config("lp", overrides={"auto_noise_robust": True})
    assert err.value.field == "auto_noise_robust"
    # the compute budget counts it
    base = resolve_config("auto", overrides={"auto_candidates": [{"method": "lr"}]})
    more = resolve_config(
        "auto", overrides={"auto_candidates": [{"method": "lr"}], "auto_noise_robust": True}
    )
    assert training_work(more, 500, 8, 3).total > training_work(base, 500, 8, 3).total


def test_auto_scores_the_noise_robust_candidate_by_cv() -> None:
    rng = np.random.default_rng(1)
    n, k = 240, 3
    y = rng.integers(0, k, n)
    x = (rng.normal(size=(n, 8)) + 3.0 * np.eye(k, 8)[y]).astype(np.float32)
    noisy = np.where(rng.random(n) < 0.3, (y + rng.integers(1, k, n)) % k, y)
    clf = NMTuneClassifier(
        method="auto",
        auto_candidates=[{"method": "lr"}],
        auto_noise_robust=True,
        auto_cv_repeats=1,
        auto_race=False,  # every fold scored
        lp_epochs=4,
        min_steps=20,
        device="cpu",
        random_state=0,
    ).fit(x, noisy)
    lr, gce = clf.candidates_
    assert lr["method"] == "lr" and gce["method"] == "lp" and gce["overrides"] == {"loss": "gce"}
    assert len(gce["cv_scores"]) == 3 and len(gce["cv_curve"]) == 5  # epoch 0 (= lr) + 4
    assert gce["cv_curve"][0] == pytest.approx(lr["cv_curve"][0])  # it starts at lr
    assert [c["selected"] for c in clf.candidates_].count(True) == 1
    assert clf.config_.loss == ("gce" if gce["selected"] else "ce")
    assert clf.config_dict_["auto_noise_robust"] is True
    assert (clf.predict(x) == y).mean() > 0.85  # clean labels
