"""``NMTuneClassifier``: the sklearn-style estimator; the one code path for every method."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from nmtune.tuner.auto import fit_auto
from nmtune.tuner.config import AUTO_FIELDS, DEFAULT_PRESET, HeadConfig, resolve_config
from nmtune.tuner.errors import ConfigError, NotFittedError, TunerInputError
from nmtune.tuner.heads import HeadModule
from nmtune.tuner.inputs import (
    as_label_list,
    check_features,
    classes_array,
    encode_labels,
    label_kind,
)
from nmtune.tuner.metrics import accuracy
from nmtune.tuner.selection import fit_single
from nmtune.tuner.serialization import head_blob, load_head_blob, read_metadata
from nmtune.tuner.spectrum import Spectrum, spectrum
from nmtune.tuner.splits import choose_signal
from nmtune.tuner.training import ProgressCallback, predict_logits

__all__ = ["NMTuneClassifier"]

logger = logging.getLogger(__name__)

_INIT_PARAMS = ("method", "preset", "random_state")


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

    #: scikit-learn's estimator type (``sklearn.base.is_classifier``).
    _estimator_type = "classifier"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn (>= 1.6) tags: a classifier of dense 2-D float features (labels
        required, single-output, binary or multi-class) whose ``transform`` gives the adapted
        features (float32). scikit-learn is imported here only: it is not a dependency of
        :mod:`tuner`."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
            transformer_tags=TransformerTags(preserves_dtype=["float32"]),  # transform: z
            input_tags=InputTags(),
        )

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
        *,
        X_target_val: Any = None,
        y_target_val: Any = None,
    ) -> NMTuneClassifier:
        """Train, selecting epochs / C / auto's candidate on the best signal available.

        Parameters
        ----------
        X, y : (n, D) features and n labels (str or int).
        X_val, y_val : optional in-domain validation split. Without one, a stratified part
            of train is held out (``val_fraction``), or k-fold CV is used when that part
            would have fewer than ``min_holdout`` rows.
        callback : called once per epoch (and per C for lr); may cancel.
        X_target_val, y_target_val : optional labelled target-domain validation data (e.g. a
            second domain). When given, selection uses it and only it; every train and
            validation row is trained on. ``selection_`` records which signal was used.

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
            raise TunerInputError(f"need at least 2 classes, got {classes.size} class")
        val = self._extra_split(X_val, y_val, "X_val", "y_val", x.shape[1], classes, kind)
        target = self._extra_split(
            X_target_val, y_target_val, "X_target_val", "y_target_val", x.shape[1], classes, kind
        )
        signal = choose_signal(config, x, y_idx, val, target)
        n_classes = int(classes.size)
        candidates: list[dict[str, Any]] = []
        if config.method == "auto":
            base = {k: v for k, v in self._overrides.items() if k not in AUTO_FIELDS}
            fitted, candidates, signal = fit_auto(
                config, base, signal, n_classes, callback=callback
            )
        else:
            fitted = fit_single(config, signal, n_classes, callback=callback)

        self.classes_ = classes
        self.class_type_ = kind
        self.n_features_in_ = int(x.shape[1])
        self.model_: HeadModule = fitted.model
        self.config_ = fitted.config
        self.method_ = fitted.config.method
        self.history_ = fitted.history
        self.best_epoch_ = fitted.best_epoch
        self.best_score_ = _finite_or_none(fitted.score)
        self.best_val_macro_f1_ = _finite_or_none(fitted.macro_f1)
        self.device_ = fitted.device
        self.candidates_ = candidates
        self.selection_ = {**signal.record(), **fitted.details}
        self.validation_ = signal.description
        self.n_train_ = int(signal.y_train.size)
        self.n_val_ = 0 if signal.y_sel is None else int(signal.y_sel.size)
        self.backbone_identity_ = ""
        self.auto_settings_: dict[str, Any] = {}
        if config.method == "auto":
            requested = config.to_dict()
            self.auto_settings_ = {k: requested[k] for k in AUTO_FIELDS}
        self.config_dict_ = self._config_dict()
        return self

    @staticmethod
    def _extra_split(
        X_: Any,
        y_: Any,
        xname: str,
        yname: str,
        dim: int,
        classes: np.ndarray[Any, Any],
        kind: str,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        """Validate an optional (X, y) pair against the training classes."""
        if (X_ is None) != (y_ is None):
            raise TunerInputError(f"give both {xname} and {yname}, or neither")
        if X_ is None:
            return None
        xs = check_features(X_, dim, name=xname)
        vals = as_label_list(y_)
        if vals and kind != label_kind(vals):
            raise TunerInputError(f"{yname} labels are not of the same type as y")
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        unknown = sorted({str(v) for v in vals if v not in lookup})
        if unknown:
            raise TunerInputError(f"{yname} has labels not in y: {unknown[:10]}")
        ys = np.array([lookup[v] for v in vals], dtype=np.int64)
        if ys.shape[0] != xs.shape[0]:
            raise TunerInputError(f"{xname} has {xs.shape[0]} rows but {yname} has {ys.shape[0]}")
        return xs, ys

    def _config_dict(self) -> dict[str, Any]:
        out = self.config_.to_dict()
        # the picked head's own config carries auto's fields at their defaults: report the
        # selection settings the fit ran with (empty for heads saved before they were kept)
        out.update(self.auto_settings_)
        out["requested_method"] = self.method
        out["validation"] = self.validation_
        out["selection"] = self.selection_
        out["n_train"] = self.n_train_
        out["n_validation"] = self.n_val_
        if self.candidates_:
            out["candidates"] = self.candidates_
        return out

    # --- inference -----------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` (or ``from_bytes``) has run (``sklearn.utils.check_is_fitted``)."""
        return hasattr(self, "model_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this NMTuneClassifier is not fitted yet; call fit first")

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

    def fit_transform(self, X: Any, y: Any, **fit_params: Any) -> npt.NDArray[np.float32]:
        """``fit(X, y, **fit_params)`` then ``transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        return accuracy(
            np.asarray(as_label_list(y), dtype=object),
            np.asarray(self.predict(X).tolist(), dtype=object),
        )

    def adapted_spectrum(self, X: Any, **kwargs: Any) -> Spectrum:
        """:func:`~tuner.spectrum.spectrum` of the adapted features ``transform(X)``."""
        return spectrum(self.transform(X), **kwargs)

    # --- serialisation -----------------------------------------------------------------
    def to_bytes(self, backbone_identity: str = "") -> bytes:
        """Safetensors bytes: weights + JSON config (method, hyper-parameters, classes, ...)."""
        self._check_fitted()
        return head_blob(self, backbone_identity)

    @staticmethod
    def read_config(blob: bytes) -> dict[str, Any]:
        """The JSON config of a blob without loading the weights."""
        return read_metadata(blob)

    @classmethod
    def from_bytes(cls, blob: bytes, device: str = "cpu") -> NMTuneClassifier:
        """Load a head written by :meth:`to_bytes`; checks the config against the tensors."""
        loaded = load_head_blob(blob, device)
        config = loaded.config
        overrides = {k: v for k, v in config.overrides if k != "seed"}
        if loaded.requested_method == "auto":
            overrides = {}
        obj = cls(
            method=loaded.requested_method,
            preset=config.preset,
            random_state=config.seed,
            **overrides,
        )
        obj.classes_ = classes_array(loaded.classes, loaded.class_type)
        obj.class_type_ = loaded.class_type
        obj.n_features_in_ = loaded.n_features
        obj.model_ = loaded.model
        obj.config_ = config
        obj.method_ = config.method
        meta = loaded.meta
        obj.history_ = list(meta.get("history", []))
        obj.best_epoch_ = int(meta.get("best_epoch", 0))
        obj.best_score_ = meta.get("best_val_accuracy")
        obj.best_val_macro_f1_ = meta.get("best_val_macro_f1")
        obj.device_ = loaded.device
        obj.candidates_ = list(meta.get("candidates", []))
        obj.validation_ = str(meta.get("validation", ""))
        obj.selection_ = dict(meta.get("selection", {}))
        obj.n_train_ = int(meta.get("n_train", 0))
        obj.n_val_ = int(meta.get("n_validation", 0))
        obj.backbone_identity_ = str(meta.get("backbone_identity", ""))
        settings = meta.get("auto_settings") or {}
        obj.auto_settings_ = {k: settings[k] for k in AUTO_FIELDS if k in settings}
        obj.config_dict_ = obj._config_dict()
        return obj


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
