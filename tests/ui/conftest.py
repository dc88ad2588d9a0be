"""Browser tests of the dashboard: Debian's chromium through Playwright (no browser
download). Skipped, with the reason, only where chromium or playwright is absent outside CI;
CI installs both (.ci/run) and fails if they are missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ConsoleLog,
    UiServer,
    chromium_missing,
    watch_console,
)
from tests.ui.harness import ui_server as _ui_server


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    why = chromium_missing()
    if why:
        if os.environ.get("CI"):  # .ci/run installs chromium: CI must run these tests
            pytest.fail(f"browser tests cannot run in CI: {why}")
        pytest.skip(why)
    with _ui_server(Path(tmp_path_factory.mktemp("ui")) / "ui.db") as server:
        yield server


@pytest.fixture(scope="module")
def browser(ui: UiServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page_log(browser: Any) -> Iterator[tuple[Any, ConsoleLog]]:
    """A fresh browser context (its own sessionStorage) at laptop size, with its console
    watched; the test fails if anything unexpected reached the console."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    log = watch_console(page)
    try:
        yield page, log
    finally:
        context.close()
    assert not log.unexpected(), log.unexpected()
