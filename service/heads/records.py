"""Typed records of a trained head as the API returns them: the resolved config (with how
the head was selected and auto's candidates), metrics per split and spectra per split.

They describe the JSON the ``train`` job stores (``tuner`` records + the job's additions);
tests/service/test_typed_api.py checks that real records of every method round-trip through
these models without losing a key.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictInt, StrictStr

from nmtune.service.json_types import Overrides, Scalar
from nmtune.service.spectra import StoredSpectrum

Label = StrictStr | StrictInt


# ----------------------------------------------------------------------------- metrics
class ClassMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    support: int


class SplitMetrics(BaseModel):
    """Scores of the head on one split."""

    accuracy: float
    macro_f1: float
    mcc: float = Field(description="Multi-class Matthews correlation coefficient.")
    per_class: dict[str, ClassMetrics] = Field(description="By class label (as a string).")
    confusion_matrix: list[list[int]] = Field(
        description="Rows: true label, columns: predicted label, in `labels` order."
    )
    labels: list[Label]
    n_samples: int
    per_class_omitted: bool = Field(
        default=False,
        description="True when the split has more labels than list_per_class_max (GET "
        "/v1/heads lists) or head_per_class_max (GET /v1/heads/{head_id}): per_class and "
        "confusion_matrix are then left empty (they grow with the classes, squared); GET "
        "/v1/heads/{head_id}/metrics/{split} pages them.",
    )


class OodAverage(BaseModel):
    """Mean over the `ood:<name>` splits (key `ood_average`)."""

    accuracy: float
    macro_f1: float
    splits: list[str]


# ------------------------------------------------------------------------------ spectra
class SplitSpectra(BaseModel):
    raw: StoredSpectrum = Field(description="Backbone features.")
    adapted: StoredSpectrum = Field(description="The head's adapted features z.")


# ------------------------------------------------------------------------- selection
class LrRecord(BaseModel):
    """How logistic regression's inverse L2 strength C was chosen."""

    c: float
    c_selection: str = Field(description="given, cv, eval or default.")
    cs: list[float] = Field(default_factory=list, description="The C grid searched.")
    c_scores: list[float | None] = Field(
        default_factory=list, description="Mean held-out accuracy per C."
    )
    c_folds: int = 0
    c_in_domain: float | None = Field(
        default=None,
        description="eval (target-domain data) only: the in-domain CV choice of C, kept unless "
        "the target rows show another C to be better by more than one paired standard error.",
    )
    refit_rows: int | None = Field(
        default=None, description="Rows of the final refit at the chosen C (auto, holdout)."
    )


class LpInitRecord(BaseModel):
    best_epoch: int
    val_accuracy: float | None


class CvRecord(BaseModel):
    folds: int
    curve: list[float | None] = Field(description="Mean fold score per epoch (0 = start).")
    epoch: int = Field(description="Epoch kept.")


class StepsRecord(BaseModel):
    passes_per_epoch: int
    steps_per_pass: int


class AutoRecord(BaseModel):
    elapsed_s: float


class SelectionRecord(BaseModel):
    """The selection signal and what it chose."""

    signal: str = Field(description="cv, holdout, target or none.")
    description: str
    n_train: int
    n_selection: int
    lr: LrRecord | None = Field(default=None, description="method lr: its C.")
    lr_init: LrRecord | None = Field(default=None, description="Heads grown from lr: its C.")
    lp_init: LpInitRecord | None = None
    cv: CvRecord | None = Field(default=None, description="Epoch chosen by k-fold CV.")
    steps: StepsRecord | None = None
    auto: AutoRecord | None = None


class Candidate(BaseModel):
    """One candidate that method auto scored."""

    index: int
    method: str
    preset: str
    overrides: Overrides
    min_per_class: int | None = Field(
        default=None,
        description="The candidate's own floor: fitted only when the median class has at least "
        "this many training examples (else `skipped` says so).",
    )
    cv_curve: list[float | None] | None = None
    cv_scores: list[float | None] | None = None
    cv_mean: float | None = None
    val_accuracy: float | None = Field(
        default=None,
        description="The score auto compared: the cross-validated mean under CV; on a holdout "
        "or target data, lr's accuracy or a torch head's cross-fitted accuracy (each half of "
        "the rows scored at the epoch the other half chooses).",
    )
    val_accuracy_best_epoch: float | None = Field(
        default=None,
        description="Torch head on a holdout / target data: accuracy of its kept (best) epoch "
        "on all selection rows (optimistic: the epoch was chosen on them).",
    )
    val_macro_f1: float | None = None
    best_epoch: int | None = None
    selected: bool = False
    skipped: str | None = Field(default=None, description="Why it was not fitted.")
    raced_out: str | None = Field(
        default=None,
        description="auto_race: why its CV stopped early (its cv_scores and cv_curve then "
        "cover only the folds it ran, cv_mean is null, and it was not eligible for the pick).",
    )
    over_budget: str | None = Field(
        default=None,
        description="Why its training stopped: projected, from its steps so far, to end past "
        "auto_time_budget_s (its holdout fit; a CV fold: past its equal share of the time "
        "left for its remaining folds), or not started when the budget was spent. Its scores "
        "cover only the folds it finished (none on a holdout) and it was not eligible for the "
        "pick.",
    )


class Timings(BaseModel):
    embed: float
    train: float


class AuditExcluded(BaseModel):
    train: int
    validation: int
    target_validation: int


class AuditUseChoiceRecord(BaseModel):
    """audit_use auto: the nested cross-validation that chose between the two uses."""

    use: str = Field(description="exclude_flagged or all_rows.")
    accuracy_all_rows: float | None = Field(
        description="Held-out accuracy on the given labels, trained on every row."
    )
    accuracy_exclude_flagged: float | None = Field(
        description="The same, trained without the rows each fold's own audit flagged."
    )
    gain: float | None = Field(description="accuracy_exclude_flagged - accuracy_all_rows.")
    gain_se: float | None = Field(description="Its standard error (paired over rows).")
    folds: int | None
    c: float | None = Field(
        description="The audit's C: the inner audits' (and both arms', for checks recorded "
        "before c_all_rows existed)."
    )
    c_all_rows: list[float] = Field(
        default_factory=list,
        description="Per outer fold, the C the every-row fit chose by CV on its own rows.",
    )
    c_exclude_flagged: list[float] = Field(
        default_factory=list,
        description="Per outer fold, the C the fit without the flagged rows chose by CV.",
    )
    reason: str | None = Field(
        default=None, description="Why the check could not run (then use is all_rows)."
    )


class AuditUseRecord(BaseModel):
    """How a head trained through a label audit (POST /v1/heads with ``audit_id``)."""

    audit_id: str
    requested: str = Field(
        default="exclude_flagged", description="The audit_use asked for: auto or exclude_flagged."
    )
    use: str = Field(
        description="exclude_flagged: flagged rows left out of training; all_rows: every row "
        "trained on (auto found no gain in leaving them out)."
    )
    choice: AuditUseChoiceRecord | None = Field(
        default=None, description="audit_use auto: the check that decided `use`."
    )
    backbone: str
    splits: list[str]
    options: dict[str, Scalar]
    n_audited: int
    n_flagged: int
    estimated_noise_rate: float | None
    excluded: AuditExcluded = Field(description="Rows left out, per split.")


class HeadConfigOut(BaseModel):
    """Every resolved hyper-parameter (tuner's HeadConfig), how the head was selected, and
    the training run's record."""

    method: str = Field(description="The head's method (auto: the candidate kept).")
    preset: str
    w_mse: float
    w_cov: float
    w_svd: float
    svd_top_k: int
    hidden_ratio: float
    num_layers: int
    norm: str
    residual: bool
    residual_init: float
    zero_init_branch: bool = Field(
        default=False,
        description="The branch's last layer started at zero (z = f at step 0).",
    )
    lr: float
    weight_decay: float
    lp_lr: float
    lp_weight_decay: float
    epochs: int
    lp_epochs: int
    batch_size: int
    schedule: str
    min_steps: int
    feature_dropout: float
    feature_noise: float
    init_classifier_from_lp: bool
    init_from_lr: bool
    class_weight: str | None
    loss: str = Field(default="ce", description="ce, or the noise-robust gce / sce.")
    gce_q: float = 0.7
    sce_alpha: float = 0.1
    sce_beta: float = 1.0
    lr_c: float | None
    lr_cs: int
    lr_max_iter: int
    lr_cv_repeats: int
    val_fraction: float
    min_holdout: int
    cv_folds: int
    patience: int = Field(
        default=0,
        description="Early stopping: epochs without a better validation score (0 = off; "
        "heads trained before it existed ran every epoch).",
    )
    seed: int
    device: str = Field(description="The device the head was trained on.")
    auto_candidates: list[dict[str, Scalar]]
    auto_rule: str
    auto_signal: str
    auto_cv_folds: int
    auto_cv_repeats: int
    auto_cv_max_rows: int
    auto_time_budget_s: float
    auto_min_per_class: int
    auto_race: bool = Field(
        default=False,
        description="auto under CV with the one-se rule: candidates not ahead of the first "
        "one after a fold stop there (heads trained before it existed ran every fold).",
    )
    auto_noise_robust: bool = Field(
        default=False,
        description="auto: a candidate trained with a noise-robust loss (lp + generalized "
        "cross entropy, grown from lr) was added after the first; on by default for an auto "
        "head trained through a label audit (`audit_id`).",
    )
    overrides: Overrides = Field(description="The overrides applied to the preset.")
    deviations: list[str] = Field(description="Where this head differs from the paper.")
    requested_method: str
    validation: str = Field(description="The selection signal, in words.")
    selection: SelectionRecord
    n_train: int
    n_validation: int
    candidates: list[Candidate] | None = Field(
        default=None, description="method auto: every candidate scored."
    )
    method_used: str | None = None
    best_epoch: int | None = None
    best_score: float | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    timings_s: Timings | None = None
    n_validation_given: int | None = None
    n_target_validation: int | None = None
    audit: AuditUseRecord | None = Field(
        default=None, description="The label audit trained through, if any."
    )
