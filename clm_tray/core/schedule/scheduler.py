"""The scheduler: runs the checks on time and retrains when one of them says so.

It never trusts its own memory of "when did this last run". Every decision is read back from
what was saved: the time of the last drift / performance / age check in the history database,
the champion's age, the run of failed cycles (triggers.py). APScheduler only wakes us up
(timer.py); each job then asks "is it due?" and runs its check (jobs.py). A laptop that slept
three days, or an app that was closed, therefore catches up ONCE, not once per missed slot. A
tick every minute notices the wall clock jumping (wake from sleep) and re-checks at once,
re-plans the next runs from the saved timestamps, and writes the state file that
`clm-tray status` in another process reads.

The scheduler talks to the engine through ``EnginePort`` (its settings, history, bus, state
file and clock; the champion's age; retrain, drift, performance, health, feed_demo) so its
timing can be tested with a small stand-in engine, without training anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, tzinfo
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import JobState, SchedulerState
from clm_tray.core.app.wording import interval
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ClmError, Stopped
from clm_tray.core.fsutil import atomic_write_json
from clm_tray.core.schedule import jobs
from clm_tray.core.schedule.jobs import CHECKS, DEMO_FEED, CheckOutcome
from clm_tray.core.schedule.pause import Pause
from clm_tray.core.schedule.retrainer import Retrainer
from clm_tray.core.schedule.state import TICK_SECONDS, local_zone, read_state
from clm_tray.core.schedule.timer import Timer
from clm_tray.core.schedule.timetable import Timetable
from clm_tray.core.schedule.triggers import Trigger

log = logging.getLogger(__name__)

RETRAIN_DUE = ev.RETRAIN_DUE  # the event a held retrain announces itself with


class SchedulerRunning(ClmError):
    """Another process already runs the scheduler for this store."""

    exit_code = 3


# ---- the scheduler ------------------------------------------------------------------------------
class Scheduler:
    """Runs the age / drift / performance checks and the retrains they call for.

    Public decision methods (``due_checks``, ``pending_triggers``, ``backoff``, ``run_due``,
    ``run_job``, ``on_tick``) take an explicit ``now`` so tests drive time without sleeping.
    """

    def __init__(self, engine: EnginePort, *, clock: Callable[[], float] | None = None,
                 tz: tzinfo | None = None, owner: str = "daemon",
                 tick_seconds: float = TICK_SECONDS, exclusive: bool = True) -> None:
        self.engine = engine
        self.clock: Callable[[], float] = clock or engine.clock
        self.tz = tz or local_zone()
        self.owner = owner
        self.tick_seconds = float(tick_seconds)
        self.exclusive = exclusive
        self._settings = engine.settings
        self.timer = Timer(self.tz)
        self.timetable = Timetable(engine.history, lambda: self._settings)
        self.retrainer = Retrainer(engine, self.timetable, lambda: self._settings, self.clock,
                                   self.tz)
        self.pauses = Pause(engine.state_path, self.tz, owner, self._replan)
        self._work = threading.RLock()  # one check / retrain at a time in this process
        self._state_lock = threading.RLock()
        self._outcomes: dict[str, str] = {}
        self._started = False  # once started, this process owns the state file
        self._last_tick: float | None = None
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None
        self._last_emitted: dict[str, Any] | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def running(self) -> bool:
        return self.timer.running

    # ---- decisions --------------------------------------------------------------------------
    def due_checks(self, now: float | None = None) -> list[str]:
        """The jobs whose interval has passed since their saved last run (empty when paused)."""
        now = self.clock() if now is None else now
        return [] if self.paused_info(now)[0] else self.timetable.due(now)

    def backoff(self, now: float | None = None) -> tuple[float | None, str]:
        """(until, reason) while automatic retrains wait after failed cycles, else (None, "")."""
        return self.retrainer.backoff(self.clock() if now is None else now)

    def pending_triggers(self, now: float | None = None) -> list[Trigger]:
        """Every reason to retrain now, read from saved state (age first)."""
        return self.retrainer.pending(self.clock() if now is None else now)

    def decide_retrain(self, now: float | None = None) -> CheckOutcome | None:
        """Start at most one retrain if a trigger is pending and nothing forbids it."""
        now = self.clock() if now is None else now
        return self.retrainer.decide(now, self._stopping, self.publish_state)

    # ---- pause (pause.py) --------------------------------------------------------------------
    def paused_info(self, now: float | None = None) -> tuple[bool, str, float | None]:
        """(paused, reason, until); a pause whose ``until`` has passed is cleared here."""
        return self.pauses.info(self.clock() if now is None else now)

    def pause(self, reason: str, until: datetime | float | None = None) -> None:
        """Stop running checks and retrains (persisted: survives a restart, seen by the CLI)."""
        now = self.clock()
        self.pauses.set(reason, until, now)
        self.publish_state(now)

    def resume(self) -> None:
        now = self.clock()
        self.pauses.lift()
        self._replan(now)  # overdue jobs run at once
        self.publish_state(now)

    # ---- running checks -------------------------------------------------------------------
    def run_check(self, name: str, now: float | None = None) -> CheckOutcome:
        """Run one check now (no due test) and remember its outcome for the state."""
        now = self.clock() if now is None else now
        self.timetable.attempted[name] = now
        self.retrainer.notes.pop(name, None)
        try:
            out = jobs.run_check(self.engine, self.settings, name, now)
        except Stopped as exc:  # the app or system is ending: not a failed check
            log.info("%s check %s", name, exc)
            out = CheckOutcome(name, now, "stopped: the app was closing")
        except ClmError as exc:
            log.warning("%s check failed: %s", name, exc)
            out = CheckOutcome(name, now, f"error: {exc}", failed=True)
        except Exception as exc:  # a bug must not stop the scheduler; it is logged in full
            log.exception("%s check crashed", name)
            out = CheckOutcome(name, now, f"error: {exc}", failed=True)
        else:
            if name in ("drift", "performance") and out.details:
                self.timetable.memory[name] = (now, out.details)
            log.info("%s check: %s", name, out.outcome)
        self._outcomes[name] = out.outcome
        return out

    def _decide_safely(self) -> list[CheckOutcome]:
        try:
            decision = self.decide_retrain(self.clock())
        except Exception as exc:  # e.g. the champion's age cannot be read; next run retries
            log.exception("cannot decide whether to retrain")
            return [CheckOutcome("retrain", self.clock(), f"error: {exc}", failed=True)]
        return [decision] if decision is not None else []

    def run_due(self, now: float | None = None) -> list[CheckOutcome]:
        """One pass: every due check once, then at most one retrain. Used at start-up, after
        a wake from sleep and by `clm-tray run --once`."""
        with self._work:
            now = self.clock() if now is None else now
            if not self.settings.enabled or self.paused_info(now)[0] or self._stopping:
                return []
            outs = [self.run_check(name, now) for name in self.due_checks(now)]
            outs += self._decide_safely()
        self.publish_state()
        return outs

    def run_job(self, name: str, now: float | None = None) -> list[CheckOutcome]:
        """What an APScheduler interval job does: run the check only if it is due by the
        saved timestamps, then decide on a retrain. Firing it N times in a row does it once."""
        with self._work:
            now = self.clock() if now is None else now
            if self._stopping or name not in self.due_checks(now):
                return []
            outs = [self.run_check(name, now)]
            if name != DEMO_FEED:
                outs += self._decide_safely()
        self.publish_state()
        return outs

    def on_tick(self, now: float | None = None) -> bool:
        """Every minute: notice a wake from sleep (the wall clock jumped), expire a pause,
        re-plan from saved timestamps, refresh the state file. Returns True on a wake."""
        now = self.clock() if now is None else now
        previous, self._last_tick = self._last_tick, now
        woke = previous is not None and now - previous > 2 * self.tick_seconds + 60.0
        self.paused_info(now)
        if woke:
            log.info("woke from sleep (the clock jumped %s); checking what is due",
                     interval(now - previous))  # type: ignore[operator]
            if self.running:  # catch up in a worker, so the tick (heartbeat) never blocks
                self.timer.catch_up(self.run_due)
            else:
                self.run_due(now)
        elif not self.paused_info(now)[0]:
            self._replan(now)
        self.publish_state(now, force_write=True)
        return woke

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background scheduler (checks that are overdue run at once)."""
        if self.running:
            return
        if self.exclusive:
            other = read_state(self.engine.state_path, self.clock, self.tick_seconds)
            if other is not None and other.running and other.pid != os.getpid():
                raise SchedulerRunning(
                    f"a clm-tray scheduler already runs for this store ({other.owner}, pid "
                    f"{other.pid}); stop it first or let it do the checks."
                )
        self._stopping = False
        self._unsubscribe = self.engine.bus.subscribe(self._on_event)
        now = self.clock()
        self._last_tick = now
        self.timer.start(self.on_tick, self.tick_seconds, now, self.run_job,
                         self.timetable.plans(now))
        self._started = True
        log.info("scheduler started (%s, pid %d): %s", self.owner, os.getpid(),
                 self.timetable.text())
        self.publish_state(now, force_write=True)

    def stop(self, *, cancel: bool = True, log_every: float = 10.0) -> None:
        """Stop cleanly: no new work, cancel a running cycle, wait for it, then shut down."""
        self._stopping = True
        watch = self.retrainer.watch
        if cancel and (watch.in_cycle or watch.stage):
            log.info("cancelling the running cycle")
            with contextlib.suppress(Exception):
                self.engine.cancel_cycle()
        while not self._work.acquire(timeout=log_every):
            log.info("waiting for the running check or cycle to end")
        self._work.release()
        self.timer.shutdown()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.publish_state(force_write=True)
        log.info("scheduler stopped")

    def apply_settings(self, settings: Settings) -> None:
        """New intervals / switches take effect now, without a restart."""
        self._settings = settings
        if self.running:
            self.timer.plan(self.run_job, self.timetable.plans(self.clock()))
            log.info("schedule re-planned: %s", self.timetable.text())
        self.publish_state(force_write=True)

    def _replan(self, now: float) -> None:
        """Move each job's next run to what the saved timestamps say (e.g. after a manual
        check from the CLI, or a resume)."""
        if not self.running:
            return
        for name in self.timetable.jobs():
            self.timer.move(name, self.timetable.next_due(name, now),
                            self.timetable.slack(self.timetable.interval(name)))

    # ---- state ----------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if self.retrainer.watch.see(event):
            self.publish_state()

    def state(self, now: float | None = None) -> SchedulerState:
        now = self.clock() if now is None else now
        paused, reason, until = self.paused_info(now)
        backoff_until, backoff_reason = self.backoff(now) if self.settings.enabled else (None, "")
        notes, watch = self.retrainer.notes, self.retrainer.watch
        job_states = []
        for name in (*CHECKS, DEMO_FEED):
            if name == DEMO_FEED and name not in self.timetable.jobs():
                continue
            job = JobState(name=name, last_run=self.timetable.last_run(name))
            job.last_outcome = self._outcomes.get(name) or self.timetable.saved_outcome(name)
            if notes.get(name):
                job.last_outcome = f"{job.last_outcome} → {notes[name]}"
            if self.running and self.settings.enabled:
                job.next_run = self.timer.next_run(name)
            job_states.append(job)
        return SchedulerState(
            running=self.running and not self._stopping, owner=self.owner, pid=os.getpid(),
            enabled=bool(self.settings.enabled), auto_retrain=bool(self.settings.auto_retrain),
            paused=paused, paused_reason=reason, paused_until=until,
            backoff_until=backoff_until, backoff_reason=backoff_reason, jobs=job_states,
            cycle_stage=watch.stage_text, cycle_progress=watch.progress,
            retrain_due=self.retrainer.due_text, updated_at=now,
        )

    def publish_state(self, now: float | None = None, *, force_write: bool = False) -> None:
        """Write the state file (when running) and emit scheduler.state when it changed."""
        with self._state_lock:
            try:
                st = self.state(now)
            except Exception:  # reading history failed; the next tick tries again
                log.exception("cannot build the scheduler state")
                return
            d = asdict(st)
            comparable = {k: v for k, v in d.items() if k != "updated_at"}
            changed = comparable != self._last_emitted
            if self._started and (changed or force_write):
                try:
                    atomic_write_json(self.engine.state_path, d)
                except OSError as exc:
                    log.warning("cannot write %s: %s", self.engine.state_path, exc)
            if changed:
                self._last_emitted = comparable
        if changed:
            self.engine.bus.emit(ev.SchedulerStateChanged(state=st))
