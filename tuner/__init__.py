"""tuner: heads (linear probe, MLP, NMTune), losses, training, metrics, spectrum diagnostics.

Pure math on arrays (numpy + PyTorch); no I/O beyond (de)serialising a head from bytes.
See docs/interfaces.md for the contract used by the service.
"""

from __future__ import annotations

import logging

from nmtune.tuner._version import __version__
from nmtune.tuner.config import DEFAULT_PRESET, METHODS, PRESETS, HeadConfig, resolve_config
from nmtune.tuner.errors import ConfigError, TrainingCancelled, TunerError, TunerInputError
from nmtune.tuner.estimator import NMTuneClassifier
from nmtune.tuner.losses import cov_loss, mse_consistency_loss, svd_loss
from nmtune.tuner.metrics import classification_metrics
from nmtune.tuner.spectrum import Spectrum, spectrum
from nmtune.tuner.training import EpochReport

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_PRESET",
    "METHODS",
    "PRESETS",
    "ConfigError",
    "EpochReport",
    "HeadConfig",
    "NMTuneClassifier",
    "Spectrum",
    "TrainingCancelled",
    "TunerError",
    "TunerInputError",
    "__version__",
    "classification_metrics",
    "cov_loss",
    "mse_consistency_loss",
    "resolve_config",
    "spectrum",
    "svd_loss",
]
