"""Run one of the engine's heavy calls in a spawned worker process (``Engine(isolate=True)``).

The tray's process must keep its event loop smooth and its memory small, so pandas, XGBoost
and scikit-learn are never imported there: a retrain, a drift or performance check, a
promotion, a rollback or a backend restart runs in a fresh "spawn" process that builds its
own Engine from the same resolved settings, makes the one call and ends, giving its memory
back to the system. Over one pipe, in order, the worker sends:

- every event its bus publishes, re-published on the caller's bus as it arrives (the
  progress bar moves while the cycle runs);
- its log records, handed to the caller's loggers (one log file, whoever wrote the line);
- last, the result (plain dataclasses from ``status.py``) or the error.

A ``ClmError`` comes back as the same class with the same one-line message; a worker that
dies without answering is a ``WorkerError`` naming how it ended. Setting ``cancel`` in the
caller sets the worker's stop flag, which the running cycle's training watches.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from clm_tray.core import errors
from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.errors import ClmError, WorkerError
from clm_tray.core.serialize import from_jsonable, to_jsonable, to_plain

log = logging.getLogger(__name__)

#: The Engine methods that may run in a worker (everything that loads data or a model, or
#: drives the deploy folder and the backend).
WORKER_METHODS = frozenset({
    "retrain", "drift", "performance", "promote", "rollback", "restart_backend", "health",
    "feed_demo", "replay",
})
#: How often the caller looks at the pipe, the worker and the cancel flag (seconds).
POLL_SECONDS = 0.05
#: When the caller itself is interrupted: how long the worker gets to stop its cycle (which
#: stops the training process) before it is terminated.
STOP_GRACE_SECONDS = 10.0


def run_in_worker(
    loaded: LoadedSettings,
    method: str,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    bus: ev.EventBus,
    cancel: threading.Event | None = None,
) -> Any:
    """Call ``Engine(loaded).<method>(*args, **kwargs)`` in a worker process and wait for it.

    Blocking, like the in-process call; run it off the GUI thread. Events reach ``bus`` on
    the calling thread while the worker runs. The worker is joined before this returns.
    """
    if method not in WORKER_METHODS:
        raise ValueError(f"{method!r} does not run in a worker")
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    proc = ctx.Process(
        target=_worker_main,
        args=(loaded, method, tuple(args), dict(kwargs or {}), send, stop,
              logging.getLogger().getEffectiveLevel()),
        name=f"clm-tray-{method}",
        daemon=False,  # it starts the training process; it ends with us (_end_with_caller)
    )
    proc.start()
    send.close()  # the worker holds the only write end: its exit ends the pipe
    cycles = _OpenCycles()
    answer: tuple[Any, ...] | None = None
    try:
        while answer is None:
            if cancel is not None and cancel.is_set() and not stop.is_set():
                stop.set()
            if not receive.poll(POLL_SECONDS):
                if proc.exitcode is not None and not receive.poll(POLL_SECONDS):
                    break  # died without closing the pipe cleanly
                continue
            try:
                message = receive.recv()
            except (EOFError, OSError):
                break  # the worker ended without answering
            kind = message[0]
            if kind == "event":
                event = from_jsonable(ev.Event, message[1])
                cycles.see(event)
                bus.publish(event)
            elif kind == "log":
                _relay_log(message[1])
            else:
                answer = message
    except BaseException:  # the caller is going away (Ctrl+C, shutdown): stop the worker too
        stop.set()
        _stop(proc, STOP_GRACE_SECONDS)
        raise
    finally:
        receive.close()
    code = _stop(proc, 30.0)

    if answer is not None and answer[0] == "result":
        return answer[1]
    if answer is not None and answer[0] == "error":
        cls = getattr(errors, answer[1], None)
        if not (isinstance(cls, type) and issubclass(cls, ClmError)):
            cls = ClmError
        raise cls(answer[2])
    if answer is not None:  # "crash": an exception that is not a ClmError (a bug)
        failure = WorkerError(
            f"The engine's worker failed during {method}: {answer[1]} (see the log)."
        )
    else:
        failure = WorkerError(
            f"The engine's worker process for {method} {exit_reason(code)} "
            "before it answered; see the log, or use less data if memory is short."
        )
    cycles.finish_unfinished(bus, str(failure))
    raise failure


def exit_reason(code: int | None) -> str:
    if code is None:
        return "did not end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _stop(proc: Any, grace: float) -> int | None:
    """Join the worker; terminate it (then kill it) if it does not end within ``grace``.
    Returns its exit code."""
    proc.join(grace)
    if proc.exitcode is None:
        proc.terminate()  # SIGTERM: the worker stops its training process, then exits
        proc.join(5.0)
    if proc.exitcode is None:
        proc.kill()
        proc.join(5.0)
    code = proc.exitcode
    with contextlib.suppress(ValueError):
        proc.close()
    return code


class _OpenCycles:
    """Cycles the worker announced but never finished (it died): the caller closes them."""

    def __init__(self) -> None:
        self.open: dict[Any, ev.Event] = {}

    def see(self, event: ev.Event) -> None:
        p = event.payload
        if isinstance(p, ev.CycleStarted):
            self.open[p.cycle] = event
        elif isinstance(p, ev.CycleFinished):
            self.open.pop(p.cycle, None)

    def finish_unfinished(self, bus: ev.EventBus, reason: str) -> None:
        for cycle in list(self.open):
            bus.emit(ev.CycleFinished(outcome=Outcome.FAILED, reason=reason, cycle=cycle),
                     level="error")
        self.open.clear()


def _relay_log(fields: dict[str, Any]) -> None:
    record = logging.makeLogRecord(fields)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


# ---- in the worker ------------------------------------------------------------------------
class _Outbox:
    """The worker's end of the pipe; events and log lines may come from several threads.
    A caller that is gone is not an error here: the worker just finishes and ends."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(message)


class _PipeMirror:
    """The worker bus's mirror: every event goes to the caller, which republishes it (and
    mirrors it to Redis itself, so the worker never connects to Redis)."""

    def __init__(self, outbox: _Outbox) -> None:
        self.outbox = outbox

    def publish(self, event: ev.Event) -> None:
        self.outbox.send(("event", to_jsonable(event)))

    def close(self) -> None:
        pass


class _LogRelay(logging.Handler):
    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.outbox.send(("log", {
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


def _worker_main(loaded: LoadedSettings, method: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any], conn: Connection, stop: Any, log_level: int) -> None:
    """The worker process: one Engine, one call, one answer."""

    def on_term(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # unwinds through train_in_child, which stops its process

    signal.signal(signal.SIGTERM, on_term)
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the caller's to handle
    _end_with_caller(stop)
    outbox = _Outbox(conn)
    root = logging.getLogger()
    root.handlers[:] = [_LogRelay(outbox)]
    root.setLevel(log_level)
    bus = ev.EventBus(keep=10)
    bus.mirror = _PipeMirror(outbox)
    try:
        from clm_tray.core.ml.lean_imports import keep_scikit_learn_out_unless_pickling

        keep_scikit_learn_out_unless_pickling(loaded.settings)  # only a .pkl writer needs it
        from clm_tray.core.app.service import Engine

        engine = Engine(loaded, bus=bus)
        try:
            if method in ("retrain", "replay"):
                kwargs = {**kwargs, "cancel": stop}
            result = getattr(engine, method)(*args, **kwargs)
        finally:
            engine.close()
        outbox.send(("result", to_plain(result)))
    except ClmError as exc:
        outbox.send(("error", _error_name(exc), str(exc)))
    except BaseException as exc:  # a bug: logged in full here, one line for the caller
        log.exception("the engine's worker failed during %s", method)
        text = " ".join(str(exc).split())
        outbox.send(("crash", f"{type(exc).__name__}: {text}" if text else type(exc).__name__))
    finally:
        conn.close()


def _end_with_caller(stop: Any) -> None:
    """A caller that dies cancels the running cycle (which stops its training process); the
    worker then finishes what cannot be cut short (a deploy, a rollback) and ends."""
    caller = multiprocessing.parent_process()
    if caller is None:
        return

    def watch() -> None:
        caller.join()
        stop.set()

    threading.Thread(target=watch, name="clm-tray-caller-watch", daemon=True).start()


def _error_name(exc: ClmError) -> str:
    """The most specific class of ``errors.py`` this error is (what the caller can rebuild)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == errors.__name__:
            return cls.__name__
    return ClmError.__name__
