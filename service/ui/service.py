"""Look-up of the dashboard's static files (shipped as package data in service/ui/static)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from nmtune.service.errors import NotFound

#: file types the dashboard ships, with the media type each is served as
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

# lower-case names in sub-folders, one dot before a known extension: no "..", no hidden files
_SAFE = re.compile(r"^(?:[a-z0-9_-]+/)*[a-z0-9_-]+\.(?:html|js|css|svg|png|txt)$")

INDEX = "index.html"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@lru_cache(maxsize=128)
def read_asset(path: str) -> Asset:
    """The static file at ``path`` (relative to service/ui/static; "" is the index page).

    Raises NotFound for anything that is not a shipped file of a known type."""
    name = path or INDEX
    if not _SAFE.fullmatch(name):
        raise NotFound(f"no dashboard file {path!r}")
    node = resources.files("nmtune.service.ui").joinpath("static", *name.split("/"))
    if not node.is_file():
        raise NotFound(f"no dashboard file {path!r}")
    body = node.read_bytes()
    ext = name[name.rindex(".") :]
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body=body, media_type=MEDIA_TYPES[ext], etag=etag)
