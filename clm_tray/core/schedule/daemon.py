"""`clm-tray run [--once]`: the scheduler in the foreground, without a tray.

``run_daemon(engine, once=False)`` keeps the model fresh until SIGINT / SIGTERM (Ctrl+C /
Ctrl+Break on Windows). On a stop signal it refuses new work, cancels a running cycle (the
training child is killed by the engine), waits for that cycle to finish its own clean-up so the
deploy journal stays consistent, and only then stops the scheduler. ``once=True`` is for cron /
Task Scheduler: every check that is due by the saved timestamps runs once, a retrain follows if
one is due and allowed, and the exit code says whether a cycle failed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.port import EnginePort
from clm_tray.core.schedule.scheduler import CheckOutcome, Scheduler
from clm_tray.core.schedule.state import clock_text, describe_state

log = logging.getLogger(__name__)

_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP")


def _ensure_logging() -> None:
    """Log to stderr when nobody configured logging (the CLI normally has)."""
    pkg = logging.getLogger("clm_tray")
    if pkg.handlers or logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _install_handlers(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Route stop signals to ``handler``; returns the previous handlers to restore."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for name in _STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, handler)
        except (OSError, ValueError):
            continue
    return previous


def _restore_handlers(previous: dict[int, Any]) -> None:
    for signum, old in previous.items():
        try:
            signal.signal(signum, old)
        except (OSError, ValueError, TypeError):
            continue


def _log_event(event: ev.Event) -> None:
    """Foreground visibility: every engine event becomes one log line."""
    if event.kind == ev.SCHEDULER_STATE:
        return
    level = getattr(logging, event.level.upper(), logging.INFO)
    fields = " ".join(f"{k}={v}" for k, v in event.data.items()
                      if k not in ("features", "metrics", "importance", "state"))
    log.log(level, "%s %s", event.kind, fields[:500])


def run_daemon(engine: EnginePort, once: bool = False, *, stop: threading.Event | None = None,
               poll: float = 0.5) -> int:
    """Run the scheduler until a stop signal (or ``stop`` is set); see the module docstring.

    Returns 0 after a clean stop or a ``--once`` pass without failed cycles, 1 when a cycle
    run by ``--once`` failed.
    """
    _ensure_logging()
    stop = stop or threading.Event()
    scheduler = Scheduler(engine, owner="once" if once else "daemon")

    def on_signal(signum: int, _frame: Any) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        if stop.is_set():
            log.warning("%s again: still waiting for the running cycle to stop cleanly", name)
        else:
            log.info("%s: stopping", name)
        stop.set()

    previous = _install_handlers(on_signal)
    unsubscribe = engine.bus.subscribe(_log_event)
    try:
        if once:
            return _run_once(engine, scheduler, stop, poll)
        scheduler.start()
        log.info("clm-tray is running: %s (Ctrl+C stops)", describe_state(scheduler.state()))
        while not stop.wait(poll):
            pass
        scheduler.stop(cancel=True)
        return 0
    finally:
        unsubscribe()
        _restore_handlers(previous)


def _run_once(engine: EnginePort, scheduler: Scheduler, stop: threading.Event, poll: float) -> int:
    """The due checks in a worker thread, so a stop signal can cancel a cycle meanwhile."""
    paused, reason, until = scheduler.paused_info()
    if not engine.settings.enabled:
        log.info("nothing to do: checks are disabled (QT_CLM_ENABLED=false)")
        return 0
    if paused:
        tail = f" until {clock_text(until, scheduler.tz)}" if until else ""
        log.info("nothing to do: paused%s: %s", tail, reason)
        return 0
    results: list[CheckOutcome] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.extend(scheduler.run_due())
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    worker = threading.Thread(target=work, name="clm-run-once")
    worker.start()
    cancelled = False
    while worker.is_alive():
        worker.join(poll)
        if stop.is_set() and not cancelled:
            cancelled = True
            scheduler.stop(cancel=True)  # marks stopping, cancels the cycle, waits for it
    if errors:
        raise errors[0]
    for r in results:
        log.info("%s: %s", r.name, r.outcome)
    if not results:
        log.info("nothing was due")
    failed = [r for r in results if r.name == "retrain" and r.failed]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m clm_tray.core.schedule.daemon [--once]`` for the environment's workspace."""
    from clm_tray.core.app.compose import open_engine
    from clm_tray.core.config.sources import load_settings

    args = list(sys.argv[1:] if argv is None else argv)
    engine = open_engine(load_settings(), "worker")
    try:
        return run_daemon(engine, once="--once" in args)
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
