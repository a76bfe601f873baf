"""What travels between a supervised child and its caller (supervised.py): the messages, the
stop flag, and the rules that keep both small and readable on the other side.

Why a module of its own: both sides need these and neither may import the other's side (the
caller imports the child's entry; the child must not import the caller's machinery). The
child makes messages plain before they travel (``serialize.to_plain``), so a caller that never
imports numpy, pandas or XGBoost can read any answer; errors travel by the name of their class
in ``errors.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from clm_tray.core import errors
from clm_tray.core.errors import ClmError

#: How often a waiting side looks again (seconds).
POLL_SECONDS = 0.05


# ---- messages, child -> caller --------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of work (boosting rounds, for training)."""

    done: int
    total: int


@dataclass(frozen=True)
class Event:
    """Something the caller should publish (the worker sends its event bus's events)."""

    data: Any


@dataclass(frozen=True)
class LogLine:
    """A log record of the child, as ``logging.makeLogRecord`` fields (message already
    formatted, traceback included), handed to the caller's logger of the same name."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """The target's return value: the last message of a child that succeeded."""

    value: Any


@dataclass(frozen=True)
class Failure:
    """The last message of a child whose target raised. ``error`` names the most specific
    class of ``errors.py`` the exception is (``ClmError`` at least); ``bug`` is True for any
    other exception, whose ``message`` is then ``"Type: text"`` on one line."""

    error: str
    message: str
    bug: bool = False


Message = Progress | Event | LogLine | Result | Failure


class StopFlag:
    """A flag both processes see, set by either: the caller's cancel, or the child itself when
    its caller dies. One shared byte, not a ``multiprocessing.Event``: an Event's ``set``
    waits for every process sleeping in its ``wait`` to wake, and a child killed while waiting
    would make the caller wait forever. ``is_set`` / ``set`` / ``wait`` as on an Event, so it
    can be handed on as a ``cancel`` event."""

    def __init__(self, ctx: Any) -> None:
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True


def error_class(name: str) -> type[ClmError]:
    """The class of ``errors.py`` called ``name`` (``ClmError`` if there is none): looked up
    among ClmError's own subclasses, so only an error class can come back."""
    todo: list[type[ClmError]] = [ClmError]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name and cls.__module__ == errors.__name__:
            return cls
        todo.extend(cls.__subclasses__())
    return ClmError


def error_name(exc: ClmError) -> str:
    """The most specific class of ``errors.py`` this error is (what the caller can rebuild)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == errors.__name__:
            return cls.__name__
    return ClmError.__name__


def relay_log(fields: dict[str, Any]) -> None:
    """Hand a child's log record to this process's logger of the same name."""
    record = logging.makeLogRecord(fields)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


def record_fields(record: logging.LogRecord, message: str) -> dict[str, Any]:
    """A log record as the fields ``relay_log`` rebuilds it from (``message`` formatted)."""
    return {
        "name": record.name, "levelno": record.levelno, "levelname": record.levelname,
        "msg": message, "args": None, "pathname": record.pathname,
        "filename": record.filename, "module": record.module, "lineno": record.lineno,
        "funcName": record.funcName, "created": record.created, "msecs": record.msecs,
        "relativeCreated": record.relativeCreated, "thread": record.thread,
        "threadName": record.threadName, "processName": record.processName,
        "process": record.process,
    }
