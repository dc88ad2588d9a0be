"""Study: NMTune's covariance term at the paper's feature scale (not a change to the tuner).

L_cov (method.md §3) scales as |z|^4. The paper's weight (w_cov = 0.04) was set on image
features whose coordinates are of order 1; on unit-norm text embeddings (MiniLM: coordinates
~0.05) the term is ~1e-4 and w_cov * L_cov ~1e-5 against a cross entropy of 0.1-0.2, so it
barely acts. L_mse (on normalised rows) and L_svd (singular-value *ratios*) are
scale-invariant. This study runs the learning-curve benchmark with L_cov computed on
z / rms(f) (the clean batch's per-coordinate RMS, detached) so that the paper's weight acts
as it would at the paper's scale, everything else unchanged:

    python benchmarks/study_scaled_cov.py --tasks vader-movies vader-tweets wordnet \
        --sizes 32 128 512 full --seeds 0 1 2 --methods "nmtune:robust:hidden_ratio=1.0" \
        "nmtune:robust:hidden_ratio=1.0;residual_init=1.0;zero_init_branch=true" \
        --tag study_scaled_cov --reuse <a learning-curve JSON with the lrcv rows>

(the arguments are bench_learning_curve.py's). Results: benchmarks/results/study_scaled_cov.md.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import torch

import nmtune.tuner.losses as losses
import nmtune.tuner.training as training

HERE = Path(__file__).resolve().parent


def compute_loss_scaled_cov(
    logits: torch.Tensor,
    z: torch.Tensor,
    f: torch.Tensor,
    y: torch.Tensor,
    config: Any,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """losses.compute_loss with L_cov taken on z / rms(f)."""
    ce = losses.classification_loss(logits, y, config, class_weight)
    total = ce
    zero = torch.zeros((), device=logits.device)
    terms = {"ce": ce, "mse": zero, "cov": zero, "svd": zero}
    if config.w_mse > 0:
        terms["mse"] = losses.mse_consistency_loss(z, f)
        total = total + config.w_mse * terms["mse"]
    if config.w_cov > 0:
        rms = f.detach().float().pow(2).mean().sqrt().clamp_min(1e-12)  # scalar
        terms["cov"] = losses.cov_loss(z / rms)
        total = total + config.w_cov * terms["cov"]
    if config.w_svd > 0:
        terms["svd"] = losses.svd_loss(z, config.svd_top_k)
        total = total + config.w_svd * terms["svd"]
    terms["total"] = total
    return total, {k: v.detach() for k, v in terms.items()}


if __name__ == "__main__":
    training.compute_loss = compute_loss_scaled_cov  # type: ignore[assignment]
    sys.argv = [str(HERE / "bench_learning_curve.py"), *sys.argv[1:]]
    sys.path.insert(0, str(HERE))
    runpy.run_path(str(HERE / "bench_learning_curve.py"), run_name="__main__")
