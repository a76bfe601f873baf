"""One rule for secrets in anything clm-tray shows or writes: a URL's userinfo becomes ``***``.

``redis://:p@ss/w0rd@host:6379/0`` -> ``redis://***@host:6379/0``. Users do not percent-encode
their passwords, so the userinfo is taken as everything between ``://`` and the LAST ``@``
before the host (a password may hold ``/``, ``:``, ``@`` or ``#``). Over-redacting an odd URL
is fine; printing a password is not. Every output path calls ``redact`` / ``redact_obj``: the
CLI's printing (config, config --json, status, events, error lines), the event bus (so
notifications, the Redis stream and the GUI see redacted text), the log handlers and diagnose.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
# scheme://  then a run of non-space characters that contains an '@'.
_URL_WITH_AT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s<>]*@[^\s<>]*)")


def _mask_userinfo(match: re.Match[str]) -> str:
    rest = match.group("rest")
    return f"{match.group('scheme')}{MASK}@{rest[rest.rfind('@') + 1:]}"


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_WITH_AT.sub(_mask_userinfo, text)


def redact_obj(obj: Any) -> Any:
    """``redact`` applied to every string inside dicts, lists and tuples (keys too)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, arguments and traceback) is redacted.

    ``one_line``: the record's message only, never a traceback — for the console, where a
    user reads it; the log file keeps the traceback for whoever debugs.
    """

    def __init__(self, fmt: str | None = None, *, one_line: bool = False) -> None:
        super().__init__(fmt)
        self.one_line = one_line

    def format(self, record: logging.LogRecord) -> str:
        if not self.one_line:
            return redact(super().format(record))
        return redact(" ".join(self.formatMessage(_with_message(record)).split()))


def _with_message(record: logging.LogRecord) -> logging.LogRecord:
    record.message = record.getMessage()
    return record
