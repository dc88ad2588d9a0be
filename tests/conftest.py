"""Session-wide hooks of the whole test suite: every log line of the run is captured and
scanned for configured secrets at the end (tests/logscan.py). A secret in any log line
fails the session. ``NMTUNE_TEST_LOGSCAN=0`` turns the capture and the scan off."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import logscan

ENABLED = os.environ.get("NMTUNE_TEST_LOGSCAN", "1") != "0"
CAPTURE_KEY = pytest.StashKey[logscan.SessionLogCapture]()
RESULT_KEY = pytest.StashKey[logscan.ScanResult]()

if ENABLED:
    logscan.install_registration_hooks()  # before any test module imports create_key


def pytest_sessionstart(session: pytest.Session) -> None:
    if not ENABLED:
        return
    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    capture = logscan.SessionLogCapture(base / "session-logs" / "root.log")
    capture.ensure()
    session.config.stash[CAPTURE_KEY] = capture
    plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    report_handler = getattr(plugin, "report_handler", None)
    if report_handler is not None:  # failure reports: as without the capture
        report_handler.addFilter(logscan.ReportFilter())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    capture = item.config.stash.get(CAPTURE_KEY, None)
    if capture is not None:
        capture.ensure()


@pytest.fixture
def session_log_capture(request: pytest.FixtureRequest) -> Iterator[logscan.SessionLogCapture]:
    capture = request.config.stash.get(CAPTURE_KEY, None)
    if capture is None:
        pytest.skip("the session log capture is off (NMTUNE_TEST_LOGSCAN=0)")
    yield capture


@pytest.hookimpl(tryfirst=True)  # before tmp_path's own clean-up
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    capture = session.config.stash.get(CAPTURE_KEY, None)
    if capture is None:
        return
    capture.close()
    base = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    files = logscan.log_files(base, logscan.LOG_FILES)
    result = logscan.scan(files, dict(logscan.SECRETS))
    session.config.stash[RESULT_KEY] = result
    if result.hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    result = config.stash.get(RESULT_KEY, None)
    capture = config.stash.get(CAPTURE_KEY, None)
    if result is None or capture is None:
        return
    summary = (
        f"log scan: {result.lines} log lines in {result.files} files "
        f"({capture.records} records captured in-process) checked against "
        f"{len(logscan.SECRETS)} registered secrets"
    )
    if not result.hits:
        terminalreporter.write_line(f"{summary}: no secret found")
        return
    terminalreporter.section("secrets in log lines", sep="=", red=True, bold=True)
    terminalreporter.write_line(f"{summary}: {len(result.hits)} hits", red=True)
    for hit in result.hits[:50]:
        terminalreporter.write_line(f"  {hit.describe()}", red=True)
    if len(result.hits) > 50:
        terminalreporter.write_line(f"  ... and {len(result.hits) - 50} more", red=True)
