"""backend_for_job: a job uses the backbone its head / audit was created with, or fails."""

from __future__ import annotations

from typing import Any

import pytest

from nmtune.adapters import BackendRegistry
from nmtune.service.backbones.service import backend_for_job
from nmtune.service.jobs.handlers import JobFailed
from tests.service.conftest import fake_spec


async def test_same_identity_is_ready_and_a_changed_one_fails(fake_upstream: Any) -> None:
    registry = BackendRegistry.from_specs([fake_spec(fake_upstream)])
    backend = registry.get("fake")
    await backend.ensure_ready()
    assert await backend_for_job(registry, "fake", backend.identity, "head") is backend
    with pytest.raises(JobFailed) as exc:
        await backend_for_job(registry, "fake", "sha256:other", "audit")
    assert exc.value.type == "BackboneChanged"
    assert "since the audit was created; create a new audit" in exc.value.message
