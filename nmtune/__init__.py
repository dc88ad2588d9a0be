"""nmtune: the Python client of the nmtune service, and offline use of exported heads.

    from nmtune import Client
    client = Client("http://localhost:8000", api_key="nmt_...")
    ds = client.datasets.create(texts=texts, labels=labels, splits=splits)
    head = client.heads.create(ds, backbone="minilm", method="auto").wait()
    head.predict(["what a film"])

``load_head(path)`` runs a head exported by ``GET /v1/heads/{id}/export`` with numpy and
safetensors only (no torch, no server). Depends on httpx, numpy and safetensors only.
"""

from __future__ import annotations

__version__ = "0.1.0"

from nmtune import errors
from nmtune.client import AsyncAudit, AsyncClient, AsyncHead, Audit, Client, Head
from nmtune.errors import APIError, JobFailedError, NmtuneError
from nmtune.offline import ExportFormatError, OfflineHead, load_head

__all__ = [
    "APIError",
    "AsyncAudit",
    "AsyncClient",
    "AsyncHead",
    "Audit",
    "Client",
    "ExportFormatError",
    "Head",
    "JobFailedError",
    "NmtuneError",
    "OfflineHead",
    "__version__",
    "errors",
    "load_head",
]
