"""One way to run heavy work in a child process the caller can always stop: the supervised process.

Why a child at all: training, and every engine call that loads pandas or XGBoost, must be
stoppable at any moment (Cancel, a timeout, the app quitting) and must give its memory back to
the system when it ends. A thread can do neither. The engine's worker and the training process
both run through this module, so spawning, messages, cancelling, timeouts, how a dead child is
described and how an orphan ends are written once.

The child runs ``target(child, *args)`` in a fresh "spawn" process (the same on every platform,
and no copy of the caller's threads or locks). It talks back over one pipe, in order, with the
small dataclasses below: ``Progress``, ``Event`` and ``LogLine`` while it works, then exactly one
``Result`` or ``Failure``. Values are made plain before they travel (``plain``), so a caller that
never imports numpy, pandas or XGBoost can read any answer.

In the caller, ``run`` (or a ``Supervisor``) waits for that answer on the calling thread and
hands progress, events and log lines to it as they arrive. How the child ended, when it did not
answer, is one of the ``ChildEnded`` exceptions: ``Cancelled``, ``TimedOut``, ``Died`` (with
the signal or exit code, and a hint when it was most likely out of memory) or ``Crashed`` (an
exception that is not a ``ClmError``: a bug, in one line). A ``ClmError`` raised in the child is
raised again in the caller as the same class with the same one-line message.

Stopping is cooperative first, then forced: ``cancel`` sets the child's stop flag (which
``Child.stopping``, or the engine's cancel checks, read); after a grace period the child is
terminated, and killed if it still runs. A child whose caller dies either ends at once or sets
its own stop flag and finishes what cannot be cut short (``ParentDeath``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from clm_tray.core import errors
from clm_tray.core.errors import ClmError

log = logging.getLogger(__name__)

#: How often the caller looks at the pipe, the child, the cancel flag and the clock (seconds).
POLL_SECONDS = 0.05
#: After ``terminate`` (SIGTERM), how long before the child is killed outright (seconds).
KILL_AFTER_SECONDS = 5.0
#: Exit code of a child that was asked to stop by SIGTERM and unwound (128 + 15).
TERMINATED_EXIT = 143
#: Modules whose objects must not travel to the caller: unpickling them would import them there.
HEAVY_MODULES = ("numpy", "pandas", "xgboost", "sklearn", "scipy", "pyarrow")


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


class ParentDeath(enum.Enum):
    """What a child does when its caller dies without stopping it."""

    EXIT = "exit"  # end at once: an orphan must not train on
    STOP = "stop"  # set the stop flag, finish what cannot be cut short (a deploy), then end


# ---- how a child ended without answering (raised in the caller) -----------------------------
class ChildEnded(Exception):
    """The child ended without a result; ``reason`` says how, in words for a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancelled(ChildEnded):
    """The caller's cancel flag was set and the child was stopped."""


class TimedOut(ChildEnded):
    """The child ran past its timeout and was stopped."""


class Died(ChildEnded):
    """The child ended without answering; ``code`` is its exit code (negative: a signal)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(exit_reason(code))
        self.code = code


class Crashed(ChildEnded):
    """The child's target raised an exception that is not a ``ClmError`` (a bug); ``reason``
    is ``"Type: text"`` on one line, the traceback is in the child's log."""


class StopRequested(Exception):
    """Raised in a child's main thread inside ``Child.raise_when_stopped`` once the stop flag
    is set (or the child is terminated)."""


def exit_reason(code: int | None) -> str:
    """How a process ended, for a sentence: "was killed by SIGKILL (often the system ran out
    of memory)", "exited with code 3"."""
    if code is None:
        return "did not end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often the system ran out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


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


# ---- in the caller --------------------------------------------------------------------------
class Supervisor:
    """One supervised child running ``target(child, *args)``; see the module docstring.

    ``target`` and ``args`` are pickled to the child: ``target`` must be a module-level
    function (its module is imported there before anything else runs: keep it light).
    ``relay_logs`` sends the child's log records to the caller's loggers at the caller's
    level. ``unwind_on_terminate`` turns SIGTERM into ``SystemExit`` in the child, so its own
    ``finally`` blocks (stopping a grandchild) run before it ends. ``hard_exit`` ends the
    child with ``os._exit`` right after its answer, skipping exit hooks that may wait (Dask's).
    ``daemon=False`` lets the child start processes of its own.
    """

    def __init__(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] = (),
        *,
        name: str,
        parent_death: ParentDeath = ParentDeath.EXIT,
        relay_logs: bool = False,
        unwind_on_terminate: bool = False,
        hard_exit: bool = False,
        daemon: bool = True,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.name = name
        self._receive, send = ctx.Pipe(duplex=False)
        self._stop = StopFlag(ctx)
        options = _Options(parent_death=parent_death, unwind_on_terminate=unwind_on_terminate,
                           hard_exit=hard_exit,
                           log_level=logging.getLogger().getEffectiveLevel() if relay_logs
                           else None)
        self._send = send
        self.process = ctx.Process(target=_child_main, args=(target, tuple(args), send,
                                                             self._stop, options),
                                   name=name, daemon=daemon)
        self.exitcode: int | None = None
        self._closed = False

    # -- life cycle
    def start(self) -> Supervisor:
        self.process.start()
        self._send.close()  # the child holds the only write end: its exit ends the pipe
        return self

    def cancel(self) -> None:
        """Set the child's stop flag (the child decides how soon it stops)."""
        self._stop.set()

    def stop(self, grace: float, on_message: Callable[[Message], None] | None = None
             ) -> int | None:
        """Set the stop flag, give the child ``grace`` seconds to end (its messages still go to
        ``on_message``), then terminate it, then kill it. Returns the exit code; idempotent."""
        if self._closed:
            return self.exitcode
        self._stop.set()
        deadline = time.monotonic() + grace
        while self.process.exitcode is None and time.monotonic() < deadline:
            self.process.join(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            self._drain(on_message)
        if self.process.exitcode is None:
            self.process.terminate()
            self.process.join(KILL_AFTER_SECONDS)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(KILL_AFTER_SECONDS)
        self._drain(on_message)
        self._close()
        return self.exitcode

    def _close(self) -> None:
        self.exitcode = self.process.exitcode
        self._closed = True
        with contextlib.suppress(OSError):
            self._receive.close()
        with contextlib.suppress(ValueError):
            self.process.close()

    # -- messages
    def receive(self, wait: float) -> Message | None:
        """The next message, or None if none came within ``wait`` seconds. Raises ``Died``
        once the child has ended and nothing is left to read."""
        try:
            if self._receive.poll(wait):
                return self._receive.recv()
            if self.process.exitcode is None:
                return None
            if self._receive.poll(POLL_SECONDS):  # it ended: is anything it sent still here?
                return self._receive.recv()
        except (EOFError, OSError):
            pass  # the pipe ended: the child is gone (or going)
        self.process.join(KILL_AFTER_SECONDS)
        raise Died(self.process.exitcode)

    def _drain(self, on_message: Callable[[Message], None] | None) -> None:
        with contextlib.suppress(EOFError, OSError):
            while self._receive.poll():
                message = self._receive.recv()
                if on_message is not None:
                    on_message(message)

    def wait(
        self,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        cancel_grace: float | None = None,
        stop_grace: float = 10.0,
        exit_grace: float = 30.0,
        on_progress: Callable[[int, int], None] | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> Any:
        """Wait for the child's answer and return its result; see ``run``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        answer: Result | Failure | None = None
        grace = stop_grace

        def deliver(message: Message) -> None:
            nonlocal answer
            if isinstance(message, Progress):
                if on_progress is not None:
                    on_progress(message.done, message.total)
            elif isinstance(message, Event):
                if on_event is not None:
                    on_event(message.data)
            elif isinstance(message, LogLine):
                relay_log(message.fields)
            elif isinstance(message, (Result, Failure)):
                answer = message

        try:
            while answer is None:
                if cancel is not None and cancel.is_set() and not self._stop.is_set():
                    self.cancel()
                    if cancel_grace is not None:
                        grace = cancel_grace
                        raise Cancelled("was cancelled")
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimedOut(f"ran longer than {timeout:g} s")
                message = self.receive(POLL_SECONDS)
                if message is not None:
                    deliver(message)
        except Died:
            self.stop(0.0)  # normally long gone; this only closes our end
            raise
        except BaseException:  # cancelled, timed out, or the caller is going away
            self.stop(grace, on_message=_only_logs)
            raise
        self.stop(exit_grace, on_message=deliver)  # it answered: it ends by itself
        if isinstance(answer, Result):
            return answer.value
        if answer.bug:
            raise Crashed(answer.message)
        raise error_class(answer.error)(answer.message)


def run(
    target: Callable[..., Any],
    args: Sequence[Any] = (),
    *,
    name: str,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    cancel_grace: float | None = None,
    stop_grace: float = 10.0,
    exit_grace: float = 30.0,
    on_progress: Callable[[int, int], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
    parent_death: ParentDeath = ParentDeath.EXIT,
    relay_logs: bool = False,
    unwind_on_terminate: bool = False,
    hard_exit: bool = False,
    daemon: bool = True,
) -> Any:
    """Run ``target(child, *args)`` in a supervised child and return what it returns.

    Blocking; progress (``on_progress(done, total)``), events (``on_event(data)``) and log
    lines arrive on the calling thread while the child works. The child is always ended before
    this returns or raises.

    - ``cancel`` set: the child's stop flag is set. With ``cancel_grace`` None the child is
      trusted to answer (the worker's cycle ends as "cancelled"); otherwise it gets
      ``cancel_grace`` seconds, is terminated, and ``Cancelled`` is raised.
    - ``timeout`` seconds passed: stop flag, ``stop_grace`` seconds, terminate; ``TimedOut``.
    - the caller is interrupted (Ctrl+C, shutdown): the same stop, then the exception goes on.
    - the child raised a ``ClmError``: the same class of ``errors.py`` with the same one-line
      message; any other exception: ``Crashed``.
    - the child died without answering: ``Died`` naming the signal or exit code.
    - after its answer the child gets ``exit_grace`` seconds to end before it is terminated.
    """
    supervisor = Supervisor(target, args, name=name, parent_death=parent_death,
                            relay_logs=relay_logs, unwind_on_terminate=unwind_on_terminate,
                            hard_exit=hard_exit, daemon=daemon)
    supervisor.start()
    return supervisor.wait(cancel=cancel, timeout=timeout, cancel_grace=cancel_grace,
                           stop_grace=stop_grace, exit_grace=exit_grace,
                           on_progress=on_progress, on_event=on_event)


def _only_logs(message: Message) -> None:
    """While a child is being stopped its progress no longer matters; its log lines do."""
    if isinstance(message, LogLine):
        relay_log(message.fields)


def error_class(name: str) -> type[ClmError]:
    """The class of ``errors.py`` called ``name`` (``ClmError`` if there is none)."""
    cls = getattr(errors, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, ClmError) else ClmError


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


def plain(obj: Any) -> Any:
    """``obj`` with numpy / pandas values turned into Python ones, so the caller can unpickle
    it without importing them. Dataclasses and enums stay what they are."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        values = {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **values)
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [plain(v) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    if type(obj).__module__.split(".")[0] in HEAVY_MODULES:
        for convert in ("item", "tolist", "isoformat"):
            if hasattr(obj, convert):
                with contextlib.suppress(Exception):
                    return plain(getattr(obj, convert)())
        return str(obj)
    return obj


# ---- in the child ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    parent_death: ParentDeath
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
            self._conn.send(plain(message))

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
    def __init__(self, child: Child) -> None:
        super().__init__()
        self.child = child

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.child.send(LogLine({
                "name": record.name, "levelno": record.levelno, "levelname": record.levelname,
                "msg": self.format(record), "args": None, "pathname": record.pathname,
                "filename": record.filename, "module": record.module,
                "lineno": record.lineno, "funcName": record.funcName,
                "created": record.created, "msecs": record.msecs,
                "relativeCreated": record.relativeCreated, "thread": record.thread,
                "threadName": record.threadName, "processName": record.processName,
                "process": record.process,
            }))
        except Exception:
            self.handleError(record)


def _child_main(target: Callable[..., Any], args: tuple[Any, ...], conn: Connection,
                stop: StopFlag, options: _Options) -> None:
    """The child process: watch the caller, run the target, send one answer, end."""
    with contextlib.suppress(ValueError, OSError):  # Ctrl+C reaches the whole process group:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides (cancel), not us
    if options.unwind_on_terminate:
        def on_term(_signum: int, _frame: Any) -> None:
            raise SystemExit(TERMINATED_EXIT)

        signal.signal(signal.SIGTERM, on_term)
    _watch_parent(options.parent_death, stop)
    child = Child(conn, stop)
    if options.log_level is not None:
        root = logging.getLogger()
        root.handlers[:] = [_LogRelay(child)]
        root.setLevel(options.log_level)
    try:
        child.send(Result(target(child, *args)))
    except ClmError as exc:
        child.send(Failure(error_name(exc), str(exc)))
    except BaseException as exc:  # a bug: logged in full here, one line for the caller
        log.exception("the %s process failed", multiprocessing.current_process().name)
        text = " ".join(str(exc).split())
        child.send(Failure(ClmError.__name__,
                           f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
                           bug=True))
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    if options.hard_exit:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def _watch_parent(action: ParentDeath, stop: StopFlag) -> None:
    """A thread that notices the caller's death (also by SIGKILL, which leaves no time to
    tell us) and ends this process or sets its stop flag."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        if action is ParentDeath.EXIT:
            os._exit(1)
        stop.set()

    threading.Thread(target=watch, name="clm-tray-parent-watch", daemon=True).start()
