"""One way to run heavy work in a child process the caller can always stop: the supervised process.

Why a child at all: training, and every engine call that loads pandas or XGBoost, must be
stoppable at any moment (Cancel, a timeout, the app quitting) and must give its memory back to
the system when it ends. A thread can do neither. The engine's worker and the training process
both run through this module, so spawning, messages, cancelling, timeouts, how a dead child is
described and how an orphan ends are written once.

The child runs ``target(child, *args)`` in a fresh "spawn" process (supervised_child.py). It
talks back over one pipe, in order, with small dataclasses (supervised_wire.py): ``Progress``,
``Event`` and ``LogLine`` while it works, then exactly one ``Result`` or ``Failure``, made plain
so that a caller without numpy, pandas or XGBoost can read them.

Here, in the caller, ``run`` (or a ``Supervisor``) waits for that answer on the calling thread
and hands progress, events and log lines over as they arrive. A ``ClmError`` raised in the
child is raised again as the same class with the same one-line message. A child that did not
answer ends in one of the ``ChildEnded`` exceptions: ``Cancelled``, ``TimedOut``, ``Died``
(naming the signal or exit code, with a hint when it was most likely out of memory) or
``Crashed`` (an exception that is not a ``ClmError``: a bug, in one line).

Stopping is cooperative first, then forced: ``cancel`` sets the child's stop flag; after a
grace period the child is terminated, then killed. A child whose caller dies ends at once or
sets its own stop flag and finishes what cannot be cut short (``ParentDeath``).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from clm_tray.core.supervised_child import ChildOptions, child_main
from clm_tray.core.supervised_wire import (
    POLL_SECONDS,
    Event,
    Failure,
    LogLine,
    Message,
    Progress,
    Result,
    StopFlag,
    error_class,
    relay_log,
)

log = logging.getLogger(__name__)

#: After ``terminate`` (SIGTERM), how long before the child is killed outright (seconds).
KILL_AFTER_SECONDS = 5.0


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


# ---- the caller's side ----------------------------------------------------------------------
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
        level = logging.getLogger().getEffectiveLevel() if relay_logs else None
        options = ChildOptions(exit_with_parent=parent_death is ParentDeath.EXIT,
                               unwind_on_terminate=unwind_on_terminate, hard_exit=hard_exit,
                               log_level=level)
        self._send = send
        self.process = ctx.Process(target=child_main, args=(target, tuple(args), send,
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
