"""Shared by the browser tests and the screenshot tool: the API (with the dashboard) on a
loopback port with two tenants' keys, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nmtune.service.app import create_app
from nmtune.service.auth.service import create_key
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from tests.service.conftest import ServerThread, make_settings, minilm_spec

CHROMIUM = os.environ.get("NMTUNE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: short training, as tests/service/test_e2e.py uses (small data: few steps suffice)
FAST = {"epochs": 8, "lp_epochs": 8, "min_steps": 60}


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@dataclass
class UiServer:
    base_url: str
    key_a: str
    key_b: str
    tenant_a: str
    db: Database

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300
        )


@contextmanager
def ui_server(db_path: Path) -> Iterator[UiServer]:
    """The app on SQLite with the local MiniLM backbone; keys of two tenants."""
    url = f"sqlite:///{db_path}"
    upgrade(url)
    settings = make_settings(url, [minilm_spec()])
    db = Database(url)
    with db.session() as s:
        tenant = f"ui-{uuid.uuid4().hex[:6]}"
        key_a = create_key(s, tenant + "-a").key
        key_b = create_key(s, tenant + "-b").key
    st = ServerThread(create_app(settings))
    base = st.__enter__()
    try:
        yield UiServer(base, key_a, key_b, tenant + "-a", db)
    finally:
        st.__exit__(None, None, None)


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors seen in the browser. HTTP error statuses a
    test provokes on purpose (401 for a wrong key, 404 for another tenant's head) appear
    as the browser's own 'Failed to load resource' line and can be allowed one by one."""

    errors: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} @ {msg.location}")

    def on_pageerror(self, exc: Any) -> None:
        self.errors.append(f"pageerror: {exc}")

    def allow_status(self, status: int) -> None:
        self.allowed_statuses.add(status)

    def unexpected(self) -> list[str]:
        allowed = tuple(
            f"Failed to load resource: the server responded with a status of {s}"
            for s in self.allowed_statuses
        )
        return [e for e in self.errors if not any(a in e for a in allowed)]


def watch_console(page: Any) -> ConsoleLog:
    log = ConsoleLog()
    page.on("console", log.on_console)
    page.on("pageerror", log.on_pageerror)
    return log


def sign_in(page: Any, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Datasets", level=1).wait_for()
