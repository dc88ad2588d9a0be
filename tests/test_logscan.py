"""The session log scan cannot pass vacuously: it sees records of every library logger at
DEBUG, finds a planted secret in the session's own capture and in subprocess log files, and a
session that logs a registered secret fails."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

from nmtune.service.auth.service import create_key
from nmtune.service.db.migrate import upgrade
from nmtune.service.db.session import Database
from nmtune.service.settings import Settings
from tests import logscan

ROOT = Path(__file__).resolve().parents[1]


def test_session_capture_records_library_debug_lines_and_the_scan_finds_a_planted_value(
    session_log_capture: logscan.SessionLogCapture, tmp_path: Path
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"  # registered only here: the session stays green
    logging.getLogger("httpcore.connection").debug("connect_tcp %s", planted)
    logging.getLogger("sqlalchemy.engine.Engine").debug("row (%r,)", planted)
    try:
        raise RuntimeError(f"failed with {planted}")
    except RuntimeError:
        logging.getLogger("nmtune.service.jobs.engine").exception("job failed")
    session_log_capture.handler.flush()
    sub = tmp_path / "worker.log"  # as a subprocess's captured output
    sub.write_text(f"2026-01-01 00:00:00,000 INFO nmtune.service.worker: key {planted}\n")
    files = logscan.log_files(tmp_path, [session_log_capture.path])
    result = logscan.scan(files, {planted: "this test"})
    where = sorted((h.file.name, h.logger) for h in result.hits)
    assert ("root.log", "httpcore.connection") in where
    assert ("root.log", "sqlalchemy.engine.Engine") in where
    assert ("root.log", "nmtune.service.jobs.engine") in where  # the traceback line
    assert ("worker.log", "nmtune.service.worker") in where
    assert result.lines >= len(result.hits) and result.files == 2
    assert planted not in " ".join(h.describe() for h in result.hits)  # reports are masked


def test_api_keys_and_settings_secrets_are_registered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        key = create_key(s, "logscan").key
    db.dispose()
    assert key in logscan.SECRETS
    password = f"pw-{uuid.uuid4().hex}"
    settings = Settings(
        database_url=f"postgresql+psycopg://u:{password}@127.0.0.1:1/x",  # type: ignore[arg-type]
        backbones=[],
        bootstrap_api_key=f"boot-{uuid.uuid4().hex}",  # type: ignore[arg-type]
    )
    settings.secret_values()
    assert password in logscan.SECRETS
    assert settings.bootstrap_api_key is not None
    assert settings.bootstrap_api_key.get_secret_value() in logscan.SECRETS


def test_a_session_that_logs_a_registered_secret_fails(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_leak.py").write_text(
        "import logging\n"
        "from tests import logscan\n"
        "def test_leak():\n"
        "    logscan.register_secret('leaky-secret-value-1234', 'test_leak')\n"
        "    logging.getLogger('httpx').debug('GET with leaky-secret-value-1234')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "bt"),
            str(tmp_path / "test_leak.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "1 passed" in text
    assert "secrets in log lines" in text and "logger httpx" in text
    assert "lea...34 (23 chars)" in text
    assert "leaky-secret-value-1234" not in text  # the report is masked too
