"""Redaction of credentials and tenant payload from log lines, installed at start-up.

``install_redaction(secrets)`` wraps the process's log record factory, so every record is
scrubbed when it is created, whichever logger emits it (httpx, openai, SQLAlchemy, uvicorn,
ours) and whichever handler later receives it: the message (after %-formatting) and the
exception text. The service's own handlers also scrub the final formatted line (extra fields
included; ``service.ops.logging``). What is removed:

- every configured secret, verbatim (backbone ``api_key`` / ``azure_ad_token`` /
  ``extra_headers`` values, passwords in the database and broker URLs, the bootstrap key);
- URL userinfo (``scheme://user:pass@host`` -> ``scheme://***@host``) and the values of
  query parameters whose name looks like a credential (``?token=``, ``&api_key=``, ``sig``...);
- ``Authorization`` / ``api-key`` header values, ``Bearer <token>``, ``key=value`` pairs whose
  key is a credential name, OpenAI-style (``sk-...``) and nmtune (``nmt_...``) keys;
- values PostgreSQL echoes in its error messages (``DETAIL:`` lines, ``Key (col)=(value)``,
  ``invalid input syntax for type ...: "value"``): tenants' texts and labels. SQL parameters
  themselves never reach an error message (the engine has ``hide_parameters=True``).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

_CRED_NAME = (
    r"(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|"
    r"client[_-]?secret|secret|password|passwd|pwd|token|sig|signature|credentials?|"
    r"session[_-]?id|x-api-key)"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:pass@host -> scheme://***@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@'\"<>]+@"), rf"\1{MASK}@"),
    # ?token=...&x=1 -> ?token=***&x=1 (names that look like a credential)
    (
        re.compile(
            r"([?&;][\w.\-]*(?:token|key|secret|pass|pwd|auth|sig|credential|session|code)"
            r"[\w.\-]*=)[^&\s'\"#<>]*",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    # Authorization: Bearer x / 'authorization': 'Basic x' / api-key: x
    (
        re.compile(
            r"\b((?:proxy-)?authorization|api-key|x-api-key|ocp-apim-subscription-key)"
            r"([\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest)\s+)?[^\s\"',;}\]]+",
            re.IGNORECASE,
        ),
        rf"\1\2\3{MASK}",
    ),
    (re.compile(r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/=\-]{6,}"), rf"\1 {MASK}"),
    (re.compile(r"\b(Basic|BASIC)\s+[A-Za-z0-9+/]{8,}={0,2}(?![\w])"), rf"\1 {MASK}"),
    # api_key=..., "password": "...", token: ...
    (
        re.compile(
            rf"(?<![\w\-])({_CRED_NAME})([\"']?\s*[:=]\s*[\"']?)(?!{re.escape(MASK)})"
            r"[^\s\"',;}&\])]+",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), f"sk-{MASK}"),
    (re.compile(r"\bnmt_[A-Za-z0-9_\-]{8,}"), f"nmt_{MASK}"),
    # PostgreSQL echoes values in its messages
    (re.compile(r"(DETAIL:)[^\n]*"), rf"\1  {MASK}"),
    (re.compile(r"(Key \([^)]*\)=\()[^\n]*?(\)\s)"), rf"\1{MASK}\2"),
    (
        re.compile(r"(invalid input (?:syntax|value) for [^:\n]*:\s*)(\"[^\n]*?\"|\S+)"),
        rf"\1{MASK}",
    ),
)


class Redactor:
    """Scrubs text: configured secrets verbatim, then the generic patterns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None

    def add_secrets(self, values: Iterable[str | None]) -> None:
        with self._lock:
            for v in values:
                if v and len(v) >= 4:
                    self._secrets.add(v)
            if self._secrets:
                alts = sorted(self._secrets, key=len, reverse=True)
                self._literal = re.compile("|".join(re.escape(s) for s in alts))

    def redact(self, text: str) -> str:
        literal = self._literal
        if literal is not None:
            text = literal.sub(MASK, text)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the raw parts, scrubbed
        message = f"{record.msg} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact(text)  # formatters use exc_text and do not re-format
    if isinstance(record.stack_info, str):
        record.stack_info = redact(record.stack_info)


_installed = False
_install_lock = threading.Lock()


def install_redaction(secrets: Iterable[str | None] = ()) -> None:
    """Scrub every log record of this process from now on (idempotent; secrets add up)."""
    global _installed
    REDACTOR.add_secrets(secrets)
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def url_secrets(url: str | None) -> list[str]:
    """The password (and user) of a URL, to scrub verbatim."""
    if not url:
        return []
    try:
        p = urlsplit(url)
    except ValueError:
        return []
    return [v for v in (p.password,) if v]


class RedactingFilter(logging.Filter):
    """Handler filter: scrubs records that bypassed the factory (created before start-up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or record.exc_info:
            _scrub_record(record)
        return True
