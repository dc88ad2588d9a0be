"""Spectrum summaries as the service stores and serves them (heads and diagnostics)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from nmtune.tuner import spectrum

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


class SpectrumOptions(BaseModel):
    """How a spectrum was computed."""

    center: bool = Field(description="Columns centred before the SVD.")
    normalize: bool = Field(description="Rows L2-normalised before the SVD.")
    max_samples: int | None = Field(description="Row cap (a seeded subsample above it).")
    random_state: int | None = Field(default=None, description="Seed of the subsample.")
    top_k: int | None = Field(default=None, description="k of `top_k_energy`.")


class StoredSpectrum(BaseModel):
    """A spectrum summary as stored with a head (per split, raw and adapted)."""

    singular_values: list[float] = Field(
        description=f"Largest first (at most {SPECTRUM_VALUES_KEPT} kept)."
    )
    sve: float | None = Field(description="Singular value entropy, -sum p_i log p_i.")
    lsvr: float | None = Field(description="Largest singular value ratio, -log(s_1 / sum s).")
    effective_rank: float | None = Field(description="exp(SVE).")
    top_k_energy: float | None = Field(
        default=None, description="Share of sum s^2 in the top_k largest values."
    )
    numerical_rank: int | None = Field(default=None, description="Values above tolerance.")
    n_samples: int = Field(description="Rows used (after max_samples).")
    n_features: int
    n_samples_total: int | None = Field(default=None, description="Rows before subsampling.")
    n_singular_values_total: int | None = Field(
        default=None, description="How many singular values there were before the cut."
    )
    options: SpectrumOptions
