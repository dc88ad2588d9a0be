"""Session-wide log capture and secret scan (issue 12: "a grep of every log line from the
whole test run finds no configured secret").

* ``SessionLogCapture`` puts one handler on the root logger that writes every formatted record
  (exception text included) to ``<pytest basetemp>/session-logs/root.log``, and sets our
  loggers and the HTTP / DB / broker libraries' loggers to DEBUG (re-asserted before every
  test, since tests and ``configure_logging`` change levels and handlers).
* ``register_secret(value, source)``: fixtures register every secret they configure (API
  keys created for tenants, fake upstream ``api_key`` values, bootstrap keys, passwords in
  URLs). ``install_registration_hooks`` also registers every API key ``create_key`` makes and
  every value ``Settings.secret_values()`` returns (each in-process app calls it).
* ``register_log(path)``: a file a fixture writes subprocess output to (``nmtune serve``,
  workers). Every ``*.log`` file under the basetemp is scanned anyway.
* ``scan(files, secrets)`` returns every hit (file, line number, logger, redacted secret);
  ``tests/conftest.py`` runs it at session end and fails the session on any hit.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: loggers set to DEBUG for the whole session (ours and the libraries that see credentials)
DEBUG_LOGGERS = (
    "nmtune",  # nmtune.service, nmtune.adapters, nmtune.tuner, the client
    "tests",
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "openai",
    "sqlalchemy",
    "celery",
    "kombu",
    "redis",
    "psycopg",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "limits",
)
#: shorter values are too likely to occur by chance (``"k"``, ``"right"``)
MIN_SECRET_LEN = 8
LINE_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
_LOGGER_RES = (
    re.compile(r"^\S+ \S+ \S+ \[([^\]]+)\]"),  # ours (LINE_FORMAT)
    re.compile(r"^\S+ \S+ [A-Z]+ ([\w.\-]+): "),  # configure_logging's text lines
    re.compile(r'"logger": "([^"]+)"'),  # configure_logging's JSON lines
)


def logger_of(line: str) -> str:
    for pattern in _LOGGER_RES:
        m = pattern.search(line)
        if m:
            return m.group(1)
    return "?"


_lock = threading.Lock()
SECRETS: dict[str, str] = {}  # secret -> where it was registered
LOG_FILES: set[Path] = set()


def register_secret(value: Any, source: str = "") -> None:
    """Register a configured secret (str or pydantic SecretStr; short values are ignored)."""
    if value is None:
        return
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
        return
    with _lock:
        SECRETS.setdefault(value, source)


def register_url_password(url: Any, source: str = "") -> None:
    """Register the password (and a long user name) of a URL, if any."""
    from urllib.parse import urlsplit

    if hasattr(url, "get_secret_value"):
        url = url.get_secret_value()
    if not isinstance(url, str) or "://" not in url:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    register_secret(parts.password, f"{source} (URL password)")


def register_env(env: dict[str, str], source: str = "") -> None:
    """Register the secrets of a subprocess environment (keys, tokens, URL passwords)."""
    for name, value in env.items():
        if not name.startswith("NMTUNE_"):
            continue
        upper = name.upper()
        if any(w in upper for w in ("API_KEY", "TOKEN", "SECRET", "PASSWORD")):
            register_secret(value, f"{source} {name}")
        if upper.endswith(("_URL", "_BACKEND")):
            register_url_password(value, f"{source} {name}")
        if upper == "NMTUNE_BACKBONES":
            import json

            try:
                specs = json.loads(value)
            except ValueError:
                continue
            for spec in specs if isinstance(specs, list) else []:
                if isinstance(spec, dict):
                    register_backbone(spec, f"{source} {name}")


def register_backbone(spec: dict[str, Any], source: str = "") -> None:
    for key in ("api_key", "azure_ad_token"):
        register_secret(spec.get(key), f"{source} backbone {spec.get('name')}.{key}")
    headers = spec.get("extra_headers")
    if isinstance(headers, dict):
        for h, v in headers.items():
            register_secret(v, f"{source} backbone {spec.get('name')}.extra_headers.{h}")


def register_log(path: Path) -> None:
    with _lock:
        LOG_FILES.add(Path(path))


def install_registration_hooks() -> None:
    """Register every API key ``create_key`` makes and every ``Settings.secret_values()``
    (called by each in-process ``create_app``). Runs before any test module is imported."""
    import nmtune.service.auth.service as auth
    from nmtune.service.settings import Settings

    if getattr(auth.create_key, "_logscan", False):
        return
    real_create = auth.create_key

    def create_key(*args: Any, **kwargs: Any) -> Any:
        created = real_create(*args, **kwargs)
        register_secret(created.key, f"API key of tenant {created.tenant_name!r}")
        return created

    create_key._logscan = True  # type: ignore[attr-defined]
    auth.create_key = create_key  # type: ignore[assignment]

    real_values = Settings.secret_values

    def secret_values(self: Settings) -> list[str]:
        values = real_values(self)
        for v in values:
            register_secret(v, "Settings.secret_values()")
        return values

    Settings.secret_values = secret_values  # type: ignore[method-assign]


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # one record may span lines (tracebacks): every physical line keeps the logger name
        text = super().format(record)
        head = text.split("\n", 1)[0]
        prefix = head[: head.find("]") + 1] if "]" in head else ""
        return "\n".join([head] + [f"{prefix} | {line}" for line in text.split("\n")[1:]])


class SessionLogCapture:
    """The root handler: every record of the session, formatted, into one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(_Formatter(LINE_FORMAT))
        self.handler.set_name("nmtune-logscan")
        self.records = 0
        self.handler.addFilter(self._count)

    def _count(self, record: logging.LogRecord) -> bool:
        self.records += 1
        return True

    def ensure(self) -> None:
        """(Re-)attach the handler and the DEBUG levels (tests and configure_logging may have
        replaced the root handlers or raised levels)."""
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        for name in DEBUG_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
                logger.setLevel(logging.DEBUG)
            logger.disabled = False

    def close(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()


class ReportFilter(logging.Filter):
    """For pytest's failure reports: drop what only the session capture raised to DEBUG /
    INFO (library and service records below WARNING), so reports read as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == n or record.name.startswith(n + ".") for n in DEBUG_LOGGERS)


@dataclass(frozen=True)
class Hit:
    file: Path
    line_no: int
    logger: str
    secret: str
    source: str

    def describe(self) -> str:
        return (
            f"{mask(self.secret)} (registered by {self.source}) in {self.file}:{self.line_no}"
            f" (logger {self.logger})"
        )


def mask(secret: str) -> str:
    """Enough of a secret to recognise it in a report, never the secret."""
    return f"{secret[:3]}...{secret[-2:]} ({len(secret)} chars)"


@dataclass
class ScanResult:
    files: int
    lines: int
    hits: list[Hit]


def log_files(base: Path | None, extra: Iterable[Path] = ()) -> list[Path]:
    found = set(p for p in extra if p.is_file())
    if base is not None and base.is_dir():
        found.update(p for p in base.rglob("*.log") if p.is_file())
    return sorted(found)


def _lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="backslashreplace") as f:
        yield from f


def scan(files: Iterable[Path], secrets: dict[str, str]) -> ScanResult:
    """Every line of ``files`` against every secret (one alternation regex)."""
    hits: list[Hit] = []
    n_files = n_lines = 0
    if secrets:
        alts = sorted(secrets, key=len, reverse=True)
        pattern: re.Pattern[str] | None = re.compile("|".join(re.escape(s) for s in alts))
    else:
        pattern = None
    for path in files:
        n_files += 1
        for i, line in enumerate(_lines(path), 1):
            n_lines += 1
            if pattern is None:
                continue
            for m in pattern.finditer(line):
                hits.append(Hit(path, i, logger_of(line), m.group(0), secrets[m.group(0)]))
    return ScanResult(n_files, n_lines, hits)
