from __future__ import annotations

from pydantic import BaseModel, Field

from nmtune.service.spectra import SpectrumOptions


class SpectrumOut(BaseModel):
    singular_values: list[float] = Field(description="Largest first (at most 256 kept).")
    sve: float = Field(description="Singular value entropy, -sum p_i log p_i, p_i = s_i/sum s.")
    lsvr: float = Field(description="Largest singular value ratio, -log(s_1 / sum s).")
    effective_rank: float = Field(description="exp(SVE).")
    n_samples: int
    n_features: int
    options: SpectrumOptions = Field(description="center, normalize, max_samples used.")
    extra: dict[str, float | None] = Field(
        default_factory=dict,
        description="Other statistics: top_k_energy, numerical_rank, n_samples_total, "
        "n_singular_values_total.",
    )


class DatasetSpectrum(BaseModel):
    dataset_id: str
    split: str
    backbone: str
    spectrum: SpectrumOut


class HeadSpectrum(BaseModel):
    head_id: str
    split: str
    raw: SpectrumOut = Field(description="Backbone features.")
    adapted: SpectrumOut = Field(description="The head's adapted features z.")


class SpectrumPending(BaseModel):
    status: str = Field(description="`embedding`: the split is being embedded; poll the job.")
    job_id: str
