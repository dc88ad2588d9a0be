"""Value rules for configuration fields: type, range, normalisation (raising ConfigError
with ``field`` set), and the JSON-tolerant equality used to compare stored configs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from nmtune.tuner.errors import ConfigError

__all__ = ["Rule", "boolean", "choice", "integer", "json_equal", "number", "optional"]

Rule = Callable[[str, Any], Any]


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Rule:
    """A finite float in [lo, hi] (ends open when asked)."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{name} must be a number, got {type(value).__name__} {value!r}", field=name
            )
        v = float(value)
        if not math.isfinite(v):
            raise ConfigError(f"{name} must be finite, got {value!r}", field=name)
        below = lo is not None and (v <= lo if lo_open else v < lo)
        above = hi is not None and (v >= hi if hi_open else v > hi)
        if below or above:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            span = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
            raise ConfigError(f"{name} must be in {span}, got {value!r}", field=name)
        return v

    return check


def integer(lo: int, hi: int | None = None, why: str = "") -> Rule:
    """An int (or an integral float) in [lo, hi]."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{name} must be an int, got {type(value).__name__} {value!r}", field=name
            )
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{name} must be an int, got {value!r}", field=name)
        v = int(value)
        if v < lo or (hi is not None and v > hi):
            bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(f"{name} must be {bound}{why}, got {value!r}", field=name)
        return v

    return check


def choice(*choices: Any) -> Rule:
    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}", field=name)
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"{name} must be a bool, got {type(value).__name__} {value!r}", field=name
        )
    return value


def optional(rule: Rule) -> Rule:
    def check(name: str, value: Any) -> Any:
        return None if value is None else rule(name, value)

    return check


def json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)
