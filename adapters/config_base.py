"""The base of every backend config: plain specs (JSON/TOML data) -> frozen dataclasses.

Also the Secret wrapper and ``BackendConfigError``; the concrete kinds live in ``config``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from .base import AdapterError


class BackendConfigError(AdapterError, ValueError):
    """A backend spec is malformed (unknown / missing / mistyped field).

    Named apart from ``tuner.ConfigError`` (a head's training config), which is unrelated.
    """


class Secret:
    """Holds a credential; never shows it in repr/str/describe()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


C = TypeVar("C", bound="BackendConfig")


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Light type checking/coercion of plain data (JSON/TOML) into field types."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, a, value)
            except BackendConfigError as e:
                errors.append(str(e))
        raise BackendConfigError(f"field {name!r}: {value!r} does not match {tp}")
    if origin is Literal:
        if value not in get_args(tp):
            raise BackendConfigError(f"field {name!r}: {value!r} is not one of {get_args(tp)}")
        return value
    if tp is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise BackendConfigError(f"field {name!r}: expected a string secret")
    if tp is bool:
        if not isinstance(value, bool):
            raise BackendConfigError(f"field {name!r}: expected a bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BackendConfigError(f"field {name!r}: expected an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BackendConfigError(f"field {name!r}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise BackendConfigError(f"field {name!r}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise BackendConfigError(f"field {name!r}: expected a list, got {value!r}")
        (inner, *_rest) = get_args(tp)
        return tuple(_coerce(name, inner, v) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise BackendConfigError(f"field {name!r}: expected a mapping")
        return dict(value)
    return value


@dataclass(frozen=True)
class BackendConfig:
    """Common fields; subclasses add their own. Build with ``from_mapping``."""

    kind: ClassVar[str] = ""
    name: str

    @classmethod
    def from_mapping(cls: type[C], data: Mapping[str, Any]) -> C:
        if not isinstance(data, Mapping):
            raise BackendConfigError(f"{cls.__name__}: spec must be a mapping")
        data = {k: v for k, v in data.items() if k != "kind"}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise BackendConfigError(
                f"{cls.__name__} ({cls.kind}): unknown field(s) {unknown}; known: {sorted(fields)}"
            )
        missing = sorted(
            n
            for n, f in fields.items()
            if n not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise BackendConfigError(
                f"{cls.__name__} ({cls.kind}): missing required field(s) {missing}"
            )
        kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise BackendConfigError(f"{cls.__name__} ({cls.kind}): {e}") from e

    def public_dict(self) -> dict[str, Any]:
        """All fields except secrets (as plain data)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Secret):
                out[f.name] = "***" if v else None
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential set in this config (to scrub them from error messages)."""
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return tuple(v for v in values if isinstance(v, Secret) and v)
