"""``NMTuneClassifier``: the sklearn-style estimator; the one code path for every method."""

from __future__ import annotations

import logging
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import safetensors
import torch

from tuner._version import __version__
from tuner.config import (
    _AUTO_FIELDS,
    DEFAULT_PRESET,
    TRAINED_METHODS,
    HeadConfig,
    resolve_config,
)
from tuner.errors import ConfigError, TunerInputError
from tuner.heads import HeadModule, build_head
from tuner.metrics import accuracy, to_native
from tuner.serialization import FORMAT_VERSION, pack, read_metadata, unpack
from tuner.spectrum import Spectrum, spectrum
from tuner.training import (
    ProgressCallback,
    TrainResult,
    predict_logits,
    resolve_device,
    stratified_split,
    train_head,
)

__all__ = [
    "NMTuneClassifier",
    "check_features",
    "cv_folds",
    "encode_labels",
    "select_candidate",
    "select_cv_candidate",
]

logger = logging.getLogger(__name__)

_INIT_PARAMS = ("method", "preset", "random_state")


def check_features(
    X: Any, n_features: int | None = None, name: str = "X"
) -> npt.NDArray[np.float32]:
    """Validate a feature matrix: 2-D, >= 1 row, numeric, finite, and ``n_features`` wide."""
    try:
        x = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TunerInputError(f"{name} must be a numeric (n, D) array: {exc}") from exc
    if x.ndim != 2:
        raise TunerInputError(f"{name} must be 2-D (n, D), got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise TunerInputError(f"{name} must have at least one row and one column, got {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise TunerInputError(
            f"{name} has {x.shape[1]} features but the head was trained on {n_features}"
        )
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise TunerInputError(f"{name} contains NaN or inf ({bad} rows)")
    return np.ascontiguousarray(x)


def select_candidate(scores: Sequence[tuple[float, float]], n_val: int, rule: str) -> int:
    """Index of auto's pick among candidates' validation (accuracy, macro-F1) in grid order.

    ``best``: highest (accuracy, macro-F1), the first one on ties. ``one-se``: the first
    candidate (the grid lists simpler heads first) whose accuracy is within one binomial
    standard error, sqrt(p (1 - p) / n_val), of the best accuracy p: differences smaller than
    the validation split can resolve do not buy a bigger head.
    """
    if not scores:
        raise ValueError("no candidates")
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    if rule == "best":
        return best
    if rule != "one-se":
        raise ConfigError(f"unknown auto_rule {rule!r}")
    p = scores[best][0]
    se = (p * (1.0 - p) / max(1, n_val)) ** 0.5
    return next(i for i, s in enumerate(scores) if s[0] >= p - se - 1e-12)


def select_cv_candidate(cv_means: Sequence[float]) -> int:
    """Index of the best mean cross-validation accuracy; ties -> the earlier (simpler) one."""
    if not cv_means:
        raise ValueError("no candidates")
    best = max(cv_means)
    return next(i for i, m in enumerate(cv_means) if m >= best - 1e-12)


def cv_folds(y: npt.NDArray[np.int64], k: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """Seeded stratified k-fold split: ``k`` sorted, disjoint index arrays covering ``y``.

    Each class is shuffled and dealt round-robin over the folds, continuing where the previous
    class stopped, so fold sizes differ by at most one and class proportions are kept.
    """
    rng = np.random.default_rng(seed)
    folds: list[list[npt.NDArray[np.int64]]] = [[] for _ in range(k)]
    start = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c).astype(np.int64)
        idx = idx[rng.permutation(idx.size)]
        for j in range(k):
            folds[(start + j) % k].append(idx[j::k])
        start = (start + idx.size) % k
    return [np.sort(np.concatenate(f)) for f in folds]


def _cv_scores(
    config: HeadConfig,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    folds: list[npt.NDArray[np.int64]],
    callback: ProgressCallback | None,
    candidate: int,
) -> list[float]:
    """Held-out accuracy of each fold; each fold's fit mirrors a single fit (best epoch on a
    stratified ``val_fraction`` split carved from the other folds, same seed)."""
    scores: list[float] = []
    for held in folds:
        rest = np.setdiff1d(np.arange(y.size), held, assume_unique=True)
        tr, va = stratified_split(y[rest], config.val_fraction, config.seed)
        if va.size == 0:
            tr = va = np.arange(rest.size)
        tr, va = rest[tr], rest[va]
        res = train_head(
            config, x[tr], y[tr], x[va], y[va], n_classes, callback=callback, candidate=candidate
        )
        xt = torch.as_tensor(x[held], dtype=torch.float32).to(next(res.model.parameters()).device)
        pred = predict_logits(res.model, xt).argmax(dim=1).cpu().numpy()
        scores.append(float(accuracy(y[held], pred)))
    return scores


def _label_kind(values: Sequence[Any]) -> str:
    kinds = set()
    for v in values:
        if isinstance(v, bool | np.bool_):
            raise TunerInputError("labels must be str or int, got a bool")
        if isinstance(v, str | np.str_):
            kinds.add("str")
        elif isinstance(v, int | np.integer):
            kinds.add("int")
        else:
            raise TunerInputError(f"labels must be str or int, got {type(v).__name__} {v!r}")
    if len(kinds) > 1:
        raise TunerInputError("labels mix str and int")
    return kinds.pop() if kinds else "int"


def encode_labels(y: Any) -> tuple[np.ndarray[Any, Any], npt.NDArray[np.int64], str]:
    """(classes (sorted, original type), indices (n,), 'str' | 'int')."""
    values = _as_label_list(y)
    kind = _label_kind(values)
    classes = _classes_array(sorted(set(values)), kind)
    index = {c: i for i, c in enumerate(classes.tolist())}
    return classes, np.array([index[v] for v in values], dtype=np.int64), kind


def _as_label_list(y: Any) -> list[Any]:
    arr = np.asarray(y, dtype=object)
    if arr.ndim != 1:
        raise TunerInputError(f"y must be 1-D, got shape {arr.shape}")
    return [to_native(v) for v in arr.tolist()]


def _classes_array(values: Sequence[Any], kind: str) -> np.ndarray[Any, Any]:
    if kind == "str":
        return np.array([str(v) for v in values], dtype=str)
    return np.array([int(v) for v in values], dtype=np.int64)


class NMTuneClassifier:
    """Train a head (lp / mlp / nmtune / auto) on frozen features; sklearn-style.

    Parameters
    ----------
    method : {'lp', 'mlp', 'nmtune', 'auto'}
    preset : {'paper-code', 'paper-text', 'robust'}
    random_state : int
        Seed of initialisation, batch order, dropout/noise and the validation split.
    **overrides
        Any :class:`~tuner.config.HeadConfig` field (validated at construction).
    """

    def __init__(
        self,
        method: str = "nmtune",
        preset: str = DEFAULT_PRESET,
        random_state: int = 0,
        **overrides: Any,
    ) -> None:
        self.method = method
        self.preset = preset
        self.random_state = random_state
        self._overrides: dict[str, Any] = dict(overrides)
        self._resolve()  # fail fast on bad configuration

    # --- sklearn protocol -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (overrides included), as sklearn expects."""
        return {
            "method": self.method,
            "preset": self.preset,
            "random_state": self.random_state,
            **self._overrides,
        }

    def set_params(self, **params: Any) -> NMTuneClassifier:
        """Set constructor parameters or overrides; validated like the constructor."""
        old = (self.method, self.preset, self.random_state, dict(self._overrides))
        for name, value in params.items():
            if name in _INIT_PARAMS:
                setattr(self, name, value)
            else:
                self._overrides[name] = value
        try:
            self._resolve()
        except ConfigError:
            self.method, self.preset, self.random_state, self._overrides = old
            raise
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"NMTuneClassifier({args})"

    def _resolve(self) -> HeadConfig:
        if "seed" in self._overrides:
            raise ConfigError("set the seed with random_state, not the 'seed' override")
        seed = 0 if self.random_state is None else self.random_state
        return resolve_config(self.method, self.preset, {**self._overrides, "seed": seed})

    # --- fitting -----------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        callback: ProgressCallback | None = None,
    ) -> NMTuneClassifier:
        """Train; validation (for the best epoch / auto) is carved from train if not given.

        Raises
        ------
        TunerInputError
            Bad arrays or labels. ConfigError: bad configuration.
        TrainingCancelled
            The callback raised it or returned False.
        """
        config = self._resolve()
        x = check_features(X)
        classes, y_idx, kind = encode_labels(y)
        if y_idx.shape[0] != x.shape[0]:
            raise TunerInputError(f"X has {x.shape[0]} rows but y has {y_idx.shape[0]} labels")
        if classes.size < 2:
            raise TunerInputError(f"need at least 2 classes, got {classes.size}")
        if (X_val is None) != (y_val is None):
            raise TunerInputError("give both X_val and y_val, or neither")
        validation = "given"
        if X_val is None:
            tr, va = stratified_split(y_idx, config.val_fraction, config.seed)
            if va.size == 0:
                logger.warning("too few examples to carve a validation split; selecting on train")
                tr = va = np.arange(y_idx.size)
                validation = "train (too few examples)"
            else:
                validation = f"carved from train ({config.val_fraction}, stratified, seeded)"
            x_tr, y_tr, x_va, y_va = x[tr], y_idx[tr], x[va], y_idx[va]
        else:
            x_va = check_features(X_val, x.shape[1], name="X_val")
            vals = _as_label_list(y_val)
            if kind != _label_kind(vals) and vals:
                raise TunerInputError("y_val labels are not of the same type as y")
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            unknown = sorted({str(v) for v in vals if v not in lookup})
            if unknown:
                raise TunerInputError(f"y_val has labels not in y: {unknown[:10]}")
            y_va = np.array([lookup[v] for v in vals], dtype=np.int64)
            if y_va.shape[0] != x_va.shape[0]:
                raise TunerInputError(
                    f"X_val has {x_va.shape[0]} rows but y_val has {y_va.shape[0]} labels"
                )
            x_tr, y_tr = x, y_idx

        n_classes = int(classes.size)
        candidates: list[dict[str, Any]] = []
        if config.method == "auto":
            base = {k: v for k, v in self._overrides.items() if k not in _AUTO_FIELDS}
            cfgs: list[HeadConfig] = []
            for i, cand in enumerate(config.candidate_overrides()):
                cmethod = str(cand.pop("method"))
                shared = {
                    k: v
                    for k, v in base.items()
                    if cmethod == "nmtune" or k not in ("w_mse", "w_cov", "w_svd")
                }
                cfgs.append(
                    resolve_config(cmethod, self.preset, {**shared, **cand, "seed": config.seed})
                )
                candidates.append({"index": i, "method": cmethod, "overrides": cand})
            if config.auto_rule == "cv":
                # k-fold CV on train + validation; only the winner is then trained as a
                # single fit (train split, best epoch on the validation split).
                x_all = np.concatenate([x_tr, x_va]) if validation == "given" else x
                y_all = np.concatenate([y_tr, y_va]) if validation == "given" else y_idx
                folds = cv_folds(y_all, config.auto_cv_folds, config.seed)
                for c, ccfg in zip(candidates, cfgs, strict=True):
                    scores = _cv_scores(
                        ccfg, x_all, y_all, n_classes, folds, callback, int(c["index"])
                    )
                    c["cv_scores"] = scores
                    c["cv_mean"] = float(np.mean(scores))
                pick = select_cv_candidate([c["cv_mean"] for c in candidates])
                result = train_head(
                    cfgs[pick], x_tr, y_tr, x_va, y_va, n_classes, callback=callback, candidate=pick
                )
                for c in candidates:
                    won = c["index"] == pick
                    c["val_accuracy"] = result.best_val_accuracy if won else None
                    c["val_macro_f1"] = result.best_val_macro_f1 if won else None
                    c["best_epoch"] = result.best_epoch if won else None
            else:
                trained: list[TrainResult] = []
                for c, ccfg in zip(candidates, cfgs, strict=True):
                    res = train_head(
                        ccfg,
                        x_tr,
                        y_tr,
                        x_va,
                        y_va,
                        n_classes,
                        callback=callback,
                        candidate=int(c["index"]),
                    )
                    c["val_accuracy"] = res.best_val_accuracy
                    c["val_macro_f1"] = res.best_val_macro_f1
                    c["best_epoch"] = res.best_epoch
                    trained.append(res)
                pick = select_candidate(
                    [(c["val_accuracy"], c["val_macro_f1"]) for c in candidates],
                    int(x_va.shape[0]),
                    config.auto_rule,
                )
                result = trained[pick]
            for c in candidates:
                c["selected"] = c["index"] == pick
            final_cfg = cfgs[pick]
        else:
            final_cfg = config
            result = train_head(final_cfg, x_tr, y_tr, x_va, y_va, n_classes, callback=callback)

        self.classes_ = classes
        self.class_type_ = kind
        self.n_features_in_ = int(x.shape[1])
        self.model_: HeadModule = result.model
        self.config_ = final_cfg
        self.method_ = final_cfg.method
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_val_accuracy
        self.best_val_macro_f1_ = result.best_val_macro_f1
        self.device_ = result.device
        self.candidates_ = candidates
        self.validation_ = validation
        self.n_train_ = int(x_tr.shape[0])
        self.n_val_ = int(x_va.shape[0])
        self.backbone_identity_ = ""
        self.config_dict_ = self._config_dict()
        return self

    def _config_dict(self) -> dict[str, Any]:
        out = self.config_.to_dict()
        out["requested_method"] = self.method
        out["validation"] = self.validation_
        if self.candidates_:
            out["candidates"] = self.candidates_
        return out

    # --- inference -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TunerInputError("this NMTuneClassifier is not fitted yet; call fit first")

    def _tensor(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        x = check_features(X, self.n_features_in_)
        return torch.as_tensor(x).to(self.device_)  # (n, D)

    def predict_proba(self, X: Any) -> npt.NDArray[np.float32]:
        """Class probabilities (n, C), columns in ``classes_`` order."""
        x = self._tensor(X)  # (n, D), checks fitted first
        logits = predict_logits(self.model_, x)  # (n, C)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray[Any, Any]:
        """Predicted labels (n,) in their original type."""
        x = self._tensor(X)  # (n, D), checks fitted first
        logits = predict_logits(self.model_, x)  # (n, C)
        labels: np.ndarray[Any, Any] = self.classes_[logits.argmax(dim=1).cpu().numpy()]
        return labels

    @torch.no_grad()
    def transform(self, X: Any) -> npt.NDArray[np.float32]:
        """Adapted features z (n, D) (the input itself for a linear probe)."""
        x = self._tensor(X)
        self.model_.eval()
        out = [self.model_.adapt(x[i : i + 8192]) for i in range(0, x.shape[0], 8192)]
        return torch.cat(out).float().cpu().numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        return accuracy(
            np.asarray(_as_label_list(y), dtype=object),
            np.asarray(self.predict(X).tolist(), dtype=object),
        )

    def adapted_spectrum(self, X: Any, **kwargs: Any) -> Spectrum:
        """:func:`~tuner.spectrum.spectrum` of the adapted features ``transform(X)``."""
        return spectrum(self.transform(X), **kwargs)

    # --- serialisation -----------------------------------------------------------------
    def to_bytes(self, backbone_identity: str = "") -> bytes:
        """Safetensors bytes: weights + JSON config (method, hyper-parameters, classes, ...)."""
        self._check_fitted()
        meta = {
            "format_version": FORMAT_VERSION,
            "method": self.method_,
            "requested_method": self.method,
            "config": self.config_.to_dict(),
            "classes": [to_native(c) for c in self.classes_.tolist()],
            "class_type": self.class_type_,
            "n_features": self.n_features_in_,
            "n_classes": int(self.classes_.size),
            "seed": self.config_.seed,
            "device": self.device_,
            "best_epoch": self.best_epoch_,
            "best_val_accuracy": self.best_score_,
            "best_val_macro_f1": self.best_val_macro_f1_,
            "validation": self.validation_,
            "candidates": self.candidates_,
            "history": self.history_,
            "backbone_identity": str(backbone_identity),
            "versions": {
                "tuner": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "safetensors": safetensors.__version__,
                "python": platform.python_version(),
            },
        }
        return pack(self.model_.state_dict(), meta)

    @staticmethod
    def read_config(blob: bytes) -> dict[str, Any]:
        """The JSON config of a blob without loading the weights."""
        return read_metadata(blob)

    @classmethod
    def from_bytes(cls, blob: bytes, device: str = "cpu") -> NMTuneClassifier:
        """Load a head written by :meth:`to_bytes`; checks the config against the tensors."""
        tensors, meta = unpack(blob)
        try:
            method = meta["method"]
            if method not in TRAINED_METHODS:
                raise TunerInputError(f"unknown head method {method!r} in blob")
            config = HeadConfig.from_dict(meta["config"])
            if config.method != method:
                raise TunerInputError("blob method and config method differ")
            n_features = int(meta["n_features"])
            n_classes = int(meta["n_classes"])
            kind = meta["class_type"]
            classes_list = meta["classes"]
            if kind not in ("str", "int") or not isinstance(classes_list, list):
                raise TunerInputError("blob has bad class labels")
            if len(classes_list) != n_classes or n_classes < 2 or n_features < 1:
                raise TunerInputError("blob n_classes / n_features / classes disagree")
            if _label_kind(classes_list) != kind and classes_list:
                raise TunerInputError("blob class_type does not match its classes")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, TunerInputError):
                raise
            raise TunerInputError(f"invalid head config in blob: {exc}") from exc

        model = build_head(config, n_features, n_classes)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in tensors.items()}
        if expected != found:
            diff = sorted(set(expected.items()) ^ set(found.items()))[:6]
            raise TunerInputError(f"blob tensors do not match its config: {diff}")
        for k, v in tensors.items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise TunerInputError(f"blob tensor {k!r} has NaN or inf")
        model.load_state_dict(tensors)
        dev = resolve_device(device)
        model.to(dev).eval()

        requested = str(meta.get("requested_method", method))
        overrides = {k: v for k, v in config.overrides if k != "seed"}
        if requested == "auto":
            overrides = {}
        obj = cls(method=requested, preset=config.preset, random_state=config.seed, **overrides)
        obj.classes_ = _classes_array(classes_list, kind)
        obj.class_type_ = kind
        obj.n_features_in_ = n_features
        obj.model_ = model
        obj.config_ = config
        obj.method_ = method
        obj.history_ = list(meta.get("history", []))
        obj.best_epoch_ = int(meta.get("best_epoch", 0))
        obj.best_score_ = float(meta.get("best_val_accuracy", 0.0))
        obj.best_val_macro_f1_ = float(meta.get("best_val_macro_f1", 0.0))
        obj.device_ = str(dev)
        obj.candidates_ = list(meta.get("candidates", []))
        obj.validation_ = str(meta.get("validation", ""))
        obj.backbone_identity_ = str(meta.get("backbone_identity", ""))
        obj.config_dict_ = obj._config_dict()
        return obj
