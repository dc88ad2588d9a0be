"""Exceptions raised by :mod:`tuner`."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataConversionWarning",
    "InputTypeError",
    "NotFittedError",
    "OverBudget",
    "TrainingCancelled",
    "TunerError",
    "TunerInputError",
]


class TunerError(Exception):
    """Base class of every error raised on purpose by :mod:`tuner`."""


class ConfigError(TunerError, ValueError):
    """An invalid method, preset, or hyper-parameter override.

    ``field`` names what is at fault: ``"method"``, ``"preset"``, or a
    :class:`~tuner.config.HeadConfig` field name (``"lr"``, ``"auto_candidates[2]"``);
    ``None`` when the error is not about one field.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TunerInputError(TunerError, ValueError):
    """Invalid input arrays, labels, or a serialised head that does not match."""


class InputTypeError(TunerInputError, TypeError):
    """Input of a type that cannot be converted to numbers (a TypeError too, as numpy's)."""


class NotFittedError(TunerInputError, AttributeError):
    """``predict`` / ``transform`` / ``to_bytes`` before ``fit`` (a ValueError and an
    AttributeError, like scikit-learn's ``NotFittedError``)."""


class DataConversionWarning(UserWarning):
    """Input was converted (e.g. a column-vector y ravelled); named as scikit-learn's."""


class TrainingCancelled(TunerError):
    """Raised (by a progress callback, or by ``fit`` when the callback returns False) to stop."""


class OverBudget(TunerError):
    """A training run given a ``deadline`` was projected to end past it, and stopped.

    ``projected_s``: the run's projected total seconds (steps so far at their measured
    rate, times the schedule's steps); ``steps``: optimiser steps taken of ``total_steps``.
    """

    def __init__(self, message: str, projected_s: float, steps: int, total_steps: int) -> None:
        super().__init__(message)
        self.projected_s = projected_s
        self.steps = steps
        self.total_steps = total_steps
