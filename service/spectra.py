"""Spectrum summaries as the service stores and serves them (heads and diagnostics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner import spectrum

#: singular values kept in a stored / served spectrum (largest first)
SPECTRUM_VALUES_KEPT = 256


def summarize_spectrum(
    x: np.ndarray,
    max_samples: int,
    seed: int,
    *,
    center: bool = True,
    normalize: bool = False,
) -> dict[str, Any]:
    """``tuner.spectrum(x).to_dict()`` with the singular values cut to SPECTRUM_VALUES_KEPT
    and their full count in ``n_singular_values_total``."""
    spec = spectrum(
        x, center=center, normalize=normalize, max_samples=max_samples, random_state=seed
    )
    d = spec.to_dict()
    sv = list(np.asarray(d.get("singular_values", [])))
    d["singular_values"] = [float(v) for v in sv[:SPECTRUM_VALUES_KEPT]]
    d["n_singular_values_total"] = len(sv)
    return d
