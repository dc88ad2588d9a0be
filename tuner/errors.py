"""Exceptions raised by :mod:`tuner`."""

from __future__ import annotations

__all__ = ["ConfigError", "TrainingCancelled", "TunerError", "TunerInputError"]


class TunerError(Exception):
    """Base class of every error raised on purpose by :mod:`tuner`."""


class ConfigError(TunerError, ValueError):
    """An invalid method, preset, or hyper-parameter override."""


class TunerInputError(TunerError, ValueError):
    """Invalid input arrays, labels, or a serialised head that does not match."""


class TrainingCancelled(TunerError):
    """Raised (by a progress callback, or by ``fit`` when the callback returns False) to stop."""
