"""The scheduler's retrain decision: start at most one retrain when a check calls for it.

A pending trigger (triggers.py) starts a retrain unless something holds it back: the workspace
is not set up yet, automatic retrains are switched off, or the back-off after failed cycles
has not run out. A held retrain is announced once per reason (``retrain.due``), not every half
hour. ``CycleWatch`` follows the running cycle's stage on the bus, whoever started it, for the
state file and the tray.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo

from clm_tray.core.app import events as ev
from clm_tray.core.app.port import EnginePort
from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import ClmError, CycleBusy, Stopped
from clm_tray.core.schedule import jobs, triggers
from clm_tray.core.schedule.jobs import CheckOutcome
from clm_tray.core.schedule.timetable import Timetable
from clm_tray.core.schedule.triggers import Trigger

log = logging.getLogger(__name__)

Publish = Callable[[float | None], None]


class CycleWatch:
    """The running cycle's stage and progress, as its events report them."""

    def __init__(self) -> None:
        self.stage = ""
        self.progress = 0.0
        self.in_cycle = False  # a retrain this scheduler started is running

    def see(self, event: ev.Event) -> bool:
        """Follow one event; True when the state changed enough to publish."""
        p = event.payload
        if isinstance(p, ev.CycleStarted):
            self.stage, self.progress = "starting", 0.0
        elif isinstance(p, ev.CycleStage):
            stage = p.stage or self.stage or "working"
            if stage == "recover" and not self.in_cycle and not self.stage:
                return False  # a recovery note at start-up, not a running cycle
            progress = p.progress
            if stage == self.stage and abs(progress - self.progress) < 0.05:
                self.progress = progress
                return False
            self.stage, self.progress = stage, progress
        elif isinstance(p, ev.CycleFinished):
            self.stage, self.progress = "", 0.0
        else:
            return False
        return True

    @property
    def stage_text(self) -> str:
        return self.stage or ("starting" if self.in_cycle else "")


class Retrainer:
    """Decides on and starts the scheduler's retrains; remembers what they did."""

    def __init__(self, engine: EnginePort, timetable: Timetable,
                 settings: Callable[[], Settings], clock: Callable[[], float],
                 tz: tzinfo) -> None:
        self.engine = engine
        self.timetable = timetable
        self._settings = settings
        self.clock = clock
        self.tz = tz
        self.raised: tuple[float, str] | None = None  # a retrain that raised before recording
        self.due_text = ""  # why a retrain is due but not started
        self._announced = ""
        self.notes: dict[str, str] = {}  # check -> what the retrain it caused did
        self.watch = CycleWatch()

    def backoff(self, now: float) -> tuple[float | None, str]:
        return triggers.backoff(self.engine.history, self._settings(), self.raised, now,
                                self.tz)

    def pending(self, now: float) -> list[Trigger]:
        return triggers.pending_triggers(self.engine.history, self._settings(),
                                         self.engine.champion_age_hours(),
                                         self.timetable.last_result, now)

    def decide(self, now: float, stopping: bool, publish: Publish) -> CheckOutcome | None:
        """Start at most one retrain if a trigger is pending and nothing forbids it."""
        pending = self.pending(now)
        if not pending:
            self.due_text = ""
            self._announced = ""
            return None
        t = pending[0]
        problem = self.engine.setup_problem()
        if problem:  # first run: say what is missing instead of failing every half hour
            return self._hold(t, f"{t.why}; not set up yet: {problem}", now)
        if not self._settings().auto_retrain:
            return self._hold(t, f"{t.why}; QT_CLM_AUTO_RETRAIN=false, so not retraining", now)
        until, why = self.backoff(now)
        if until is not None:
            return self._hold(t, f"{t.why}; {why}", now)
        if stopping:
            return None
        return self._retrain(t, now, publish)

    def _hold(self, t: Trigger, text: str, now: float) -> CheckOutcome:
        self.due_text = text
        if self._announced != t.kind:  # announce once per reason, not every half hour
            self._announced = t.kind
            log.warning("retrain due, not started: %s", text)
            self.engine.bus.emit(ev.RetrainDue(trigger=t.text, reason=text), level="warning")
        return CheckOutcome("retrain", now, f"not started: {text}", trigger=t)

    def _retrain(self, t: Trigger, now: float, publish: Publish) -> CheckOutcome:
        log.info("retraining (%s)", t.text)
        self.due_text = ""
        self._announced = ""
        self.watch.in_cycle = True
        publish(now)
        try:
            result = self.engine.retrain(t.text)
        except CycleBusy as exc:
            log.info("not retraining now, a cycle is already running: %s", exc)
            out = CheckOutcome("retrain", now, "skipped: a cycle is already running", trigger=t)
        except Stopped as exc:  # the app or system is ending: like a Cancel, no back-off
            log.info("retrain %s", exc)
            out = CheckOutcome("retrain", now, "stopped: the app was closing", trigger=t)
        except Exception as exc:
            if not isinstance(exc, ClmError):
                log.exception("retrain crashed")
            else:
                log.error("retrain failed: %s", exc)
            self.raised = (self.clock(), str(exc))
            out = CheckOutcome("retrain", now, f"failed: {exc}", failed=True, trigger=t)
        else:
            if result.ok:
                self.raised = None
            out = jobs.retrain_outcome(result, t, now)
        finally:
            self.watch.in_cycle = False
        self.notes[t.kind] = f"retrain {out.outcome}"
        publish(None)
        return out
