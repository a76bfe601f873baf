"""Run one heavy engine call in a worker process (``proxy.WorkerEngine``).

The tray's process must keep its event loop smooth and its memory small, so pandas, XGBoost
and scikit-learn are never imported there: a retrain, a drift or performance check, a
promotion, a rollback or a backend restart runs in a fresh supervised process
(core/supervised.py) that builds its own in-process engine from the same resolved settings
(with the ``build`` function the composition root hands over), makes the one call (a typed
request, requests.py) and ends, giving its memory back to the system. While it works, every
event its bus publishes is re-published on the caller's bus as it arrives (the progress bar
moves while the cycle runs) and its log records go to the caller's loggers (one log file,
whoever wrote the line); last comes the result (plain dataclasses from ``status.py``).

A ``ClmError`` comes back as the same class with the same one-line message; a worker that
dies or crashes without answering is a ``WorkerError`` naming how it ended, and a cycle it
announced but never finished is closed on the caller's bus. Setting ``cancel`` in the caller
sets the worker's stop flag, which the running cycle's training watches; the worker still
answers (outcome ``cancelled``). A caller that dies sets that flag too: the worker finishes
what cannot be cut short (a deploy, a rollback) and ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from clm_tray.core import supervised
from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Outcome
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.errors import Stopped, WorkerError
from clm_tray.core.serialize import from_jsonable, to_jsonable
from clm_tray.core.supervised_child import Child

if TYPE_CHECKING:
    from clm_tray.core.app.port import EnginePort
    from clm_tray.core.app.requests import WorkerRequest

R = TypeVar("R")
#: Builds the worker's in-process engine; must be a module-level function (it is pickled).
EngineBuilder = Callable[[LoadedSettings, ev.EventBus], "EnginePort"]
#: When the caller itself is interrupted: how long the worker gets to stop its cycle (which
#: stops the training process) before it is terminated.
STOP_GRACE_SECONDS = 10.0
#: After its answer, how long the worker gets to end by itself.
EXIT_GRACE_SECONDS = 30.0


def run_in_worker(
    loaded: LoadedSettings,
    request: WorkerRequest[R],
    *,
    build: EngineBuilder,
    bus: ev.EventBus,
    cancel: threading.Event | None = None,
) -> R:
    """Make ``request`` on ``build(loaded, bus)`` in a worker process and wait for it.

    Blocking, like the in-process call; run it off the GUI thread. Events reach ``bus`` on
    the calling thread while the worker runs. The worker has ended when this returns.
    """
    cycles = _OpenCycles()

    def on_event(data: Any) -> None:
        event: ev.Event = from_jsonable(ev.Event, data)
        cycles.see(event)
        bus.publish(event)

    try:
        result: R = supervised.run(
            _worker_main, (loaded, request, build), name=f"clm-tray-{request.name}",
            cancel=cancel, cancel_grace=None,  # a cancelled cycle still answers "cancelled"
            stop_grace=STOP_GRACE_SECONDS, exit_grace=EXIT_GRACE_SECONDS, on_event=on_event,
            parent_death=supervised.ParentDeath.STOP, relay_logs=True,
            unwind_on_terminate=True,  # SIGTERM unwinds through train_in_child, which stops
            daemon=False,              # the training process the worker started
        )
        return result
    except Stopped as exc:  # asked to end (SIGTERM): a cycle it started ends as cancelled
        cycles.finish_unfinished(bus, str(exc), Outcome.CANCELLED)
        raise
    except supervised.Crashed as exc:  # an exception that is not a ClmError (a bug)
        failure = WorkerError(
            f"The engine's worker failed during {request.name}: {exc.reason} (see the log).")
    except supervised.Died as exc:
        memory = "" if "memory" in exc.reason else ", or use less data if memory is short"
        failure = WorkerError(
            f"The engine's worker process for {request.name} {exc.reason} before it "
            f"answered; see the log{memory}.")
    cycles.finish_unfinished(bus, str(failure))
    raise failure


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

    def finish_unfinished(self, bus: ev.EventBus, reason: str,
                          outcome: Outcome = Outcome.FAILED) -> None:
        for cycle in list(self.open):
            bus.emit(ev.CycleFinished(outcome=outcome, reason=reason, cycle=cycle),
                     level="error" if outcome.failed else "info")
        self.open.clear()


# ---- in the worker ------------------------------------------------------------------------
class _ToCaller:
    """The worker bus's mirror: every event goes to the caller, which republishes it (and
    mirrors it to Redis itself, so the worker never connects to Redis)."""

    def __init__(self, child: Child) -> None:
        self.child = child

    def publish(self, event: ev.Event) -> None:
        self.child.event(to_jsonable(event))

    def close(self) -> None:
        pass


def _worker_main(child: Child, loaded: LoadedSettings, request: WorkerRequest[R],
                 build: EngineBuilder) -> R:
    """The worker process: one engine, one call; the answer is the supervisor's to send."""
    bus = ev.EventBus(keep=10)
    bus.mirror = _ToCaller(child)
    engine = build(loaded, bus)
    try:
        return request.run(engine, _cancel_flag(child))
    finally:
        engine.close()


def _cancel_flag(child: Child) -> threading.Event:
    """The call's cancel flag (a ``threading.Event``, as the engine's calls take): set when
    the child's stop flag is, i.e. when the caller cancels or dies."""
    cancel = threading.Event()

    def follow() -> None:
        child.stop.wait()
        cancel.set()

    threading.Thread(target=follow, name="clm-tray-cancel", daemon=True).start()
    return cancel
