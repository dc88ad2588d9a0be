"""The /ui routes without a browser: files, media types, headers, refusals, packaging."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ui.harness import UiServer, ui_server

STATIC = Path(__file__).resolve().parents[2] / "service" / "ui" / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    with ui_server(tmp_path_factory.mktemp("uistatic") / "s.db") as s:
        yield s


def test_index_and_assets(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        r = c.get("/ui", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/ui/"
        r = c.get("/ui/")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script type="module" src="js/app.js">' in r.text
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        for path, kind in (
            ("/ui/js/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
            ("/ui/icon.svg", "image/svg+xml"),
        ):
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith(kind), path
        # conditional GET
        r = c.get("/ui/js/api.js")
        again = c.get("/ui/js/api.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_no_api_key_needed_but_no_data_either(server: UiServer) -> None:
    """The static files are public; every number still comes from the authenticated API."""
    with httpx.Client(base_url=server.base_url) as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/v1/datasets").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../service/settings.py",
        "/ui/%2e%2e/%2e%2e/pyproject.toml",
        "/ui/js/../../router.py",
        "/ui/router.py",
        "/ui/__init__.py",
        "/ui/.hidden.js",
        "/ui/missing.js",
        "/ui/JS/APP.JS",
    ],
)
def test_refuses_anything_else(server: UiServer, path: str) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        r = c.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.json()["error"] == "NotFound"


def test_not_in_the_api_schema(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_every_asset_is_package_data() -> None:
    """pyproject's package-data patterns cover every file the dashboard ships."""
    conf = tomllib.loads((STATIC.parents[2] / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["package-data"]["nmtune.service.ui"]
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    covered = {p for pat in patterns for p in STATIC.parent.glob(pat) if p.is_file()}
    assert files
    assert files <= covered, sorted(str(p) for p in files - covered)


def test_no_remote_assets() -> None:
    """Offline: no file refers to another origin (no CDN, no web fonts)."""
    for p in STATIC.rglob("*"):
        if p.suffix in {".html", ".js", ".css"}:
            text = p.read_text()
            for bad in ("http://", "https://", "//cdn", "@import"):
                hits = [ln for ln in text.splitlines() if bad in ln and "w3.org/2000/svg" not in ln]
                assert not hits, (p.name, bad, hits)
