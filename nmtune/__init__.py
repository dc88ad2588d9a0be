"""nmtune: the Python client of the nmtune service, and offline use of exported heads.

``load_head(path)`` runs a head exported by ``GET /v1/heads/{id}/export`` with numpy and
safetensors only (no torch, no server).
"""

from __future__ import annotations

from nmtune.offline import ExportFormatError, OfflineHead, load_head

__all__ = ["ExportFormatError", "OfflineHead", "load_head"]
