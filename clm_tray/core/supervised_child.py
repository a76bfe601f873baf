"""The child's side of a supervised process (supervised.py): what the target is given, how it
answers, and how the process ends.

``child_main`` is what the spawned process runs: it ignores Ctrl+C (the caller decides),
watches its caller (an orphan ends, or sets its own stop flag and finishes what cannot be cut
short), relays its log records if asked, runs ``target(child, *args)`` and sends exactly one
``Result`` or ``Failure``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from clm_tray.core.errors import ClmError, Stopped
from clm_tray.core.serialize import to_plain
from clm_tray.core.supervised_wire import (
    POLL_SECONDS,
    Event,
    Failure,
    LogLine,
    Message,
    Progress,
    Result,
    StopFlag,
    error_name,
    record_fields,
)

log = logging.getLogger(__name__)

#: Exit code of a child that was asked to stop by SIGTERM and unwound (128 + 15).
TERMINATED_EXIT = 143


class StopRequested(Exception):
    """Raised in a child's main thread inside ``Child.raise_when_stopped`` once the stop flag
    is set (or the child is terminated)."""


@dataclass(frozen=True)
class ChildOptions:
    """How the caller wants this child to behave (see ``supervised.Supervisor``)."""

    exit_with_parent: bool  # False: set the stop flag when the caller dies, and finish
    unwind_on_terminate: bool
    hard_exit: bool
    log_level: int | None  # None: the child's log records stay in the child


class Child:
    """The child's side: what ``target`` gets as its first argument. Safe to use from any of
    the child's threads; a caller that is gone is not an error here (messages are dropped)."""

    def __init__(self, conn: Connection, stop: StopFlag) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        #: The stop flag (``is_set()``); pass it on as a ``cancel`` event.
        self.stop = stop

    def send(self, message: Message) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._conn.send(to_plain(message))

    def progress(self, done: int, total: int) -> None:
        self.send(Progress(int(done), int(total)))

    def event(self, data: Any) -> None:
        self.send(Event(data))

    def stopping(self) -> bool:
        """Whether the caller asked this child to stop (cancel, timeout, caller gone)."""
        return bool(self.stop.is_set())

    @contextlib.contextmanager
    def raise_when_stopped(self) -> Iterator[None]:
        """Inside, ``StopRequested`` is raised in the main thread once the stop flag is set or
        the child is terminated: for work that must unwind (leave a cluster cleanly) rather
        than be killed. Call from the main thread. The stop is delivered as SIGTERM to the main
        thread, so it also interrupts a blocking wait there, as the parent's terminate would."""
        def on_term(_signum: int, _frame: Any) -> None:
            raise StopRequested

        leaving = threading.Lock()
        done = threading.Event()
        main = threading.main_thread().ident

        def watch() -> None:
            while not done.is_set():
                if not self.stop.wait(POLL_SECONDS * 4):
                    continue
                with leaving:  # never after the block has put SIGTERM's old handler back
                    if done.is_set():
                        return
                    if hasattr(signal, "pthread_kill") and main is not None:
                        signal.pthread_kill(main, signal.SIGTERM)
                    else:  # Windows: no signals to threads; the main thread sees it soon
                        import _thread

                        _thread.interrupt_main(signal.SIGTERM)
                return

        previous = signal.signal(signal.SIGTERM, on_term)
        threading.Thread(target=watch, name="clm-tray-stop-watch", daemon=True).start()
        try:
            yield
        finally:
            try:
                with leaving:
                    done.set()
            finally:
                signal.signal(signal.SIGTERM, previous)


class _LogRelay(logging.Handler):
    """The child's root log handler: every record goes to the caller's logger of that name."""

    def __init__(self, child: Child) -> None:
        super().__init__()
        self.child = child

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.child.send(LogLine(record_fields(record, self.format(record))))
        except Exception:
            self.handleError(record)


def child_main(target: Callable[..., Any], args: tuple[Any, ...], conn: Connection,
                stop: StopFlag, options: ChildOptions) -> None:
    """The child process: watch the caller, run the target, send one answer, end."""
    with contextlib.suppress(ValueError, OSError):  # Ctrl+C reaches the whole process group:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides (cancel), not us
    if options.unwind_on_terminate:
        def on_term(_signum: int, _frame: Any) -> None:
            raise SystemExit(TERMINATED_EXIT)

        signal.signal(signal.SIGTERM, on_term)
    _watch_parent(options.exit_with_parent, stop)
    child = Child(conn, stop)
    if options.log_level is not None:
        root = logging.getLogger()
        root.handlers[:] = [_LogRelay(child)]
        root.setLevel(options.log_level)
    try:
        child.send(Result(target(child, *args)))
    except ClmError as exc:
        child.send(Failure(error_name(exc), str(exc)))
    except SystemExit as exc:
        if exc.code != TERMINATED_EXIT:
            _send_bug(child, exc)
        else:  # SIGTERM (on_term above): stopped as asked, not a bug
            log.info("the %s process was asked to end before it finished",
                     multiprocessing.current_process().name)
            child.send(Failure(Stopped.__name__, "stopped before it finished: the process was "
                               "asked to end (the app quitting, a logout or a shutdown)"))
    except BaseException as exc:  # a bug: logged in full here, one line for the caller
        _send_bug(child, exc)
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    if options.hard_exit:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def _send_bug(child: Child, exc: BaseException) -> None:
    """A bug: logged in full here, one line for the caller."""
    log.error("the %s process failed", multiprocessing.current_process().name, exc_info=exc)
    text = " ".join(str(exc).split())
    child.send(Failure(ClmError.__name__,
                       f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
                       bug=True))


def _watch_parent(exit_with_parent: bool, stop: StopFlag) -> None:
    """A thread that notices the caller's death (also by SIGKILL, which leaves no time to
    tell us) and ends this process or sets its stop flag."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        if exit_with_parent:
            os._exit(1)
        stop.set()

    threading.Thread(target=watch, name="clm-tray-parent-watch", daemon=True).start()
