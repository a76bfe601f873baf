"""The scheduler: runs the checks on time and retrains when one of them says so.

It never trusts its own memory of "when did this last run". Every decision is read back from
what was saved: the time of the last drift / performance / age check in the history database,
the champion's age, the run of failed cycles. APScheduler only wakes us up; each job then asks
"is it due?". A laptop that slept three days, or an app that was closed, therefore catches up
ONCE, not once per missed slot. A tick every minute notices the wall clock jumping (wake from
sleep) and re-checks at once, re-plans the next runs from the saved timestamps, and writes the
state file that `clm-tray status` in another process reads.

The scheduler talks to the engine through a small duck-typed surface (``settings``,
``history``, ``bus``, ``state_path``, ``clock``, ``champion_age_hours()``, ``retrain(trigger)``,
``drift()``, ``performance()``, ``feed_demo()``, ``cancel_cycle()``) so its timing can be tested
without training anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import CycleRecord, JobState, Outcome, SchedulerState
from clm_tray.core.app.wording import interval
from clm_tray.core.errors import ClmError, CycleBusy
from clm_tray.core.fsutil import atomic_write_json
from clm_tray.core.schedule.state import (
    _DISABLED,
    TICK_SECONDS,
    _drift_text,
    _perf_text,
    _perf_why,
    _report_dict,
    clear_pause,
    clock_text,
    local_zone,
    read_pause,
    read_state,
    write_pause,
)

log = logging.getLogger(__name__)

CHECKS = ("age", "drift", "performance")  # the order a catch-up runs them in
DEMO_FEED = "demo-feed"
RETRAIN_DUE = ev.RETRAIN_DUE


class SchedulerRunning(ClmError):
    """Another process already runs the scheduler for this store."""

    exit_code = 3


@dataclass
class Trigger:
    """Why a retrain is due: ``text`` goes to the cycle record, ``why`` to people."""

    kind: str  # "age" / "drift" / "performance"
    text: str  # "age: model 25.0 h old > 24 h"
    why: str  # "model is 25.0 h old (> 24 h)"


@dataclass
class CheckOutcome:
    """What one job run did (``run_due`` returns a list of these)."""

    name: str  # "age" / "drift" / "performance" / "demo-feed" / "retrain"
    at: float
    outcome: str
    failed: bool = False  # the check raised, or the retrain it started failed
    trigger: Trigger | None = None
    cycle: Any = None  # the CycleResult of a retrain this run started
    details: dict[str, Any] = field(default_factory=dict)


# ---- the scheduler ------------------------------------------------------------------------------
class Scheduler:
    """Runs the age / drift / performance checks and the retrains they call for.

    Public decision methods (``due_checks``, ``pending_triggers``, ``backoff``, ``run_due``,
    ``run_job``, ``on_tick``) take an explicit ``now`` so tests drive time without sleeping.
    """

    def __init__(self, engine: Any, *, clock: Callable[[], float] | None = None,
                 tz: tzinfo | None = None, owner: str = "daemon",
                 tick_seconds: float = TICK_SECONDS, exclusive: bool = True) -> None:
        self.engine = engine
        self.clock: Callable[[], float] = clock or getattr(engine, "clock", None) or time.time
        self.tz = tz or local_zone()
        self.owner = owner
        self.tick_seconds = float(tick_seconds)
        self.exclusive = exclusive
        self._settings = engine.settings
        self._aps: Any = None
        self._work = threading.RLock()  # one check / retrain at a time in this process
        self._state_lock = threading.RLock()
        self._attempted: dict[str, float] = {}  # job -> when this process last ran it
        self._memory: dict[str, tuple[float, dict[str, Any]]] = {}  # job -> (at, result)
        self._outcomes: dict[str, str] = {}
        self._retrain_notes: dict[str, str] = {}  # check -> what the retrain it caused did
        self._started = False  # once started, this process owns the state file
        self._raised: tuple[float, str] | None = None  # a retrain that raised before recording
        self._retrain_due = ""
        self._due_announced = ""
        self._in_cycle = False
        self._cycle_stage = ""
        self._cycle_progress = 0.0
        self._last_tick: float | None = None
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None
        self._last_emitted: dict[str, Any] | None = None

    # ---- settings and intervals -----------------------------------------------------------
    @property
    def settings(self) -> Any:
        return self._settings

    @property
    def running(self) -> bool:
        return self._aps is not None and bool(getattr(self._aps, "running", False))

    def jobs(self) -> list[str]:
        """The jobs the current settings ask for (none when disabled)."""
        if not self.settings.enabled:
            return []
        names = list(CHECKS)
        if self.settings.demo_feed_minutes > 0:
            names.append(DEMO_FEED)
        return names

    def interval(self, name: str) -> float:
        s = self.settings
        return {
            "age": s.check_minutes * 60.0,
            "drift": s.drift_hours * 3600.0,
            "performance": s.perf_hours * 3600.0,
            DEMO_FEED: s.demo_feed_minutes * 60.0,
        }[name]

    @staticmethod
    def _slack(interval: float) -> float:
        """A job fired on time must count as due even if the last check ended a bit later."""
        return min(60.0, interval * 0.05)

    # ---- saved timestamps -----------------------------------------------------------------
    def last_run(self, name: str) -> float | None:
        """When this job last ran: saved in history, or attempted by this process (newer wins).

        Remembering the attempts keeps a check that raised (and so saved nothing) from being
        retried at every tick.
        """
        times = [self._attempted.get(name)]
        if name in CHECKS:
            saved = self.engine.history.last_check(name)
            times.append(saved[0] if saved else None)
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def next_due(self, name: str, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        last = self.last_run(name)
        return now if last is None else max(now, last + self.interval(name))

    def due_checks(self, now: float | None = None) -> list[str]:
        """The jobs whose interval has passed since their saved last run (empty when paused)."""
        now = self.clock() if now is None else now
        if self.paused_info(now)[0]:
            return []
        due = []
        for name in self.jobs():
            last = self.last_run(name)
            iv = self.interval(name)
            if last is None or now - last >= iv - self._slack(iv):
                due.append(name)
        return due

    def _last_result(self, name: str) -> tuple[float, dict[str, Any]] | None:
        saved = self.engine.history.last_check(name)
        mem = self._memory.get(name)
        if saved and mem:
            return saved if saved[0] >= mem[0] else mem
        return saved or mem

    def _last_ok_cycle(self) -> CycleRecord | None:
        for rec in self.engine.history.cycles(50):
            # a cancelled cycle tried nothing, a start-up reconcile trained nothing: neither
            # may postpone the next age retrain
            if rec.outcome not in ("running", Outcome.CANCELLED, Outcome.RECONCILED) \
                    and not rec.failed:
                return rec
        return None

    # ---- decisions ------------------------------------------------------------------------
    def backoff(self, now: float | None = None) -> tuple[float | None, str]:
        """(until, reason) while automatic retrains wait after failed cycles, else (None, "").

        With n failures in a row the wait is retrain_hours x backoff_fraction x 2^(n-1) after
        the last one, never longer than retrain_hours. A manual retrain does not ask.
        """
        now = self.clock() if now is None else now
        failures = self.engine.history.failures_since_success()
        n = len(failures)
        end = (failures[0].finished_at or failures[0].started_at) if failures else None
        reason = failures[0].reason if failures else ""
        if self._raised is not None:
            last = self.engine.history.last_cycle()
            last_at = (last.finished_at or last.started_at) if last else None
            if last_at is None or self._raised[0] > last_at:
                n, end, reason = n + 1, self._raised[0], self._raised[1]
        if n == 0 or end is None:
            return None, ""
        full = self.settings.retrain_hours * 3600.0
        delay = min(full, full * self.settings.backoff_fraction * 2 ** (n - 1))
        until = end + delay
        if now >= until:
            return None, ""
        what = "the last cycle failed" if n == 1 else f"the last {n} cycles failed"
        return until, f"paused until {clock_text(until, self.tz, now)} because {what}: {reason}"

    def pending_triggers(self, now: float | None = None) -> list[Trigger]:
        """Every reason to retrain now, read from saved state (age first)."""
        now = self.clock() if now is None else now
        s = self.settings
        last_ok = self._last_ok_cycle()
        ok_at = (last_ok.finished_at or last_ok.started_at) if last_ok else None
        out: list[Trigger] = []
        # A cycle that ran but kept the champion (rejected / waiting) is not retried by age
        # before a full interval: the same data would give the same answer.
        recently_tried = ok_at is not None and now - ok_at < s.retrain_hours * 3600.0
        age = self.engine.champion_age_hours()
        if not recently_tried:
            if age is None:
                out.append(Trigger("age", "age: no model deployed yet", "no model is deployed"))
            elif age > s.retrain_hours:
                out.append(Trigger(
                    "age", f"age: model {age:.1f} h old > {s.retrain_hours:g} h",
                    f"model is {age:.1f} h old (> {s.retrain_hours:g} h)"))
        for kind, flag in (("drift", "drifted"), ("performance", "degraded")):
            last = self._last_result(kind)
            if not last or not last[1].get(flag) or (ok_at is not None and last[0] <= ok_at):
                continue
            d = last[1]
            if kind == "drift":
                score, thr = float(d.get("score") or 0.0), float(d.get("threshold") or 0.0)
                out.append(Trigger("drift", f"drift: score {score:.3f} > {thr:g}",
                                   f"drift score {score:.3f} > {thr:g}"))
            else:
                why = _perf_why(d)
                out.append(Trigger("performance", f"performance: {why}", why))
        return out

    # ---- pause ----------------------------------------------------------------------------
    def paused_info(self, now: float | None = None) -> tuple[bool, str, float | None]:
        """(paused, reason, until); a pause whose ``until`` has passed is cleared here."""
        now = self.clock() if now is None else now
        p = read_pause(self.engine.state_path)
        if not p:
            return False, "", None
        until = float(p["until"]) if p.get("until") is not None else None
        if until is not None and now >= until:
            if clear_pause(self.engine.state_path):
                log.info("resumed: the pause until %s is over", clock_text(until, self.tz, now))
                self._replan(now)
            return False, "", None
        return True, str(p.get("reason") or ""), until

    def pause(self, reason: str, until: datetime | float | None = None) -> None:
        """Stop running checks and retrains (persisted: survives a restart, seen by the CLI)."""
        if isinstance(until, datetime):
            until_ts: float | None = until.timestamp()
        else:
            until_ts = float(until) if until is not None else None
        now = self.clock()
        write_pause(self.engine.state_path, reason, until_ts, by=self.owner, at=now)
        tail = f" until {clock_text(until_ts, self.tz, now)}" if until_ts else ""
        log.info("paused%s: %s", tail, reason)
        self.publish_state(now)

    def resume(self) -> None:
        now = self.clock()
        if clear_pause(self.engine.state_path):
            log.info("resumed")
        self._replan(now)  # overdue jobs run at once
        self.publish_state(now)

    # ---- running checks -------------------------------------------------------------------
    def run_check(self, name: str, now: float | None = None) -> CheckOutcome:
        """Run one check now (no due test) and remember its outcome for the state."""
        now = self.clock() if now is None else now
        self._attempted[name] = now
        self._retrain_notes.pop(name, None)
        try:
            if name == "age":
                out = self._check_age(now)
            elif name in ("drift", "performance") and self.engine.champion_age_hours() is None:
                out = CheckOutcome(name, now, "no model deployed yet; nothing to check")
            elif name == "drift":
                d = _report_dict(self.engine.drift())
                self._memory[name] = (now, d)
                out = CheckOutcome(name, now, _drift_text(d), details=d)
            elif name == "performance":
                d = _report_dict(self.engine.performance())
                self._memory[name] = (now, d)
                out = CheckOutcome(name, now, _perf_text(d), details=d)
            elif name == DEMO_FEED:
                rows = int(self.engine.feed_demo())
                out = CheckOutcome(name, now, f"appended {rows} rows", details={"rows": rows})
            else:
                raise ValueError(f"unknown job {name!r}")
        except ClmError as exc:
            log.warning("%s check failed: %s", name, exc)
            out = CheckOutcome(name, now, f"error: {exc}", failed=True)
        except Exception as exc:  # a bug must not stop the scheduler; it is logged in full
            log.exception("%s check crashed", name)
            out = CheckOutcome(name, now, f"error: {exc}", failed=True)
        else:
            log.info("%s check: %s", name, out.outcome)
        self._outcomes[name] = out.outcome
        return out

    def _check_age(self, now: float) -> CheckOutcome:
        age = self.engine.champion_age_hours()
        rh = self.settings.retrain_hours
        if age is None:
            text = "no model deployed"
        elif age > rh:
            text = f"model {age:.1f} h old > {rh:g} h"
        else:
            text = f"model {age:.1f} h old (fresh)"
        text += self._check_backend(age)
        d = {"age_hours": age, "retrain_hours": rh, "due": age is None or age > rh,
             "outcome": text}
        self.engine.history.add_check("age", d, at=now)
        return CheckOutcome("age", now, text, details=d)

    def _check_backend(self, age: float | None) -> str:
        """Probe the backend with the age check, so 'healthy' in the tray is never hours old
        and a backend that died between deploys is noticed (and notified) within one interval."""
        if self.settings.resolved_backend == "none" or age is None:
            return ""
        probe = getattr(self.engine, "health", None)
        if probe is None:
            return ""
        try:
            report = probe()  # recorded and published by the engine
        except Exception as exc:  # a broken probe must not stop the age check
            log.warning("backend health probe failed: %s", exc)
            return ""
        return "" if report.ok else f"; backend unhealthy: {report.reason}"

    def decide_retrain(self, now: float | None = None) -> CheckOutcome | None:
        """Start at most one retrain if a trigger is pending and nothing forbids it."""
        now = self.clock() if now is None else now
        triggers = self.pending_triggers(now)
        if not triggers:
            self._retrain_due = ""
            self._due_announced = ""
            return None
        t = triggers[0]
        problem = getattr(self.engine, "setup_problem", lambda: None)()
        if problem:  # first run: say what is missing instead of failing every half hour
            return self._hold(t, f"{t.why}; not set up yet: {problem}", now)
        if not self.settings.auto_retrain:
            return self._hold(t, f"{t.why}; QT_CLM_AUTO_RETRAIN=false, so not retraining", now)
        until, why = self.backoff(now)
        if until is not None:
            return self._hold(t, f"{t.why}; {why}", now)
        if self._stopping:
            return None
        return self._retrain(t, now)

    def _hold(self, t: Trigger, text: str, now: float) -> CheckOutcome:
        self._retrain_due = text
        if self._due_announced != t.kind:  # announce once per reason, not every half hour
            self._due_announced = t.kind
            log.warning("retrain due, not started: %s", text)
            self.engine.bus.emit(ev.RetrainDue(trigger=t.text, reason=text), level="warning")
        return CheckOutcome("retrain", now, f"not started: {text}", trigger=t)

    def _retrain(self, t: Trigger, now: float) -> CheckOutcome:
        log.info("retraining (%s)", t.text)
        self._retrain_due = ""
        self._due_announced = ""
        self._in_cycle = True
        self.publish_state(now)
        try:
            result = self.engine.retrain(t.text)
        except CycleBusy as exc:
            log.info("not retraining now, a cycle is already running: %s", exc)
            out = CheckOutcome("retrain", now, "skipped: a cycle is already running", trigger=t)
        except Exception as exc:
            if not isinstance(exc, ClmError):
                log.exception("retrain crashed")
            else:
                log.error("retrain failed: %s", exc)
            self._raised = (self.clock(), str(exc))
            out = CheckOutcome("retrain", now, f"failed: {exc}", failed=True, trigger=t)
        else:
            ok = bool(getattr(result, "ok", False))
            if ok:
                self._raised = None
            outcome = str(getattr(result, "outcome", "") or "")
            failed = Outcome.is_failure(outcome) if outcome else not ok  # cancel is no failure
            text = f"{outcome or '?'}: {getattr(result, 'reason', '')}"
            (log.error if failed else log.info)("retrain %s", text)
            out = CheckOutcome("retrain", now, text.rstrip(": "), failed=failed, trigger=t,
                               cycle=result)
        finally:
            self._in_cycle = False
        self._retrain_notes[t.kind] = f"retrain {out.outcome}"
        self.publish_state()
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
                self._aps.add_job(self.run_due, trigger="date", id="catch-up",
                                  replace_existing=True, coalesce=True, max_instances=1,
                                  misfire_grace_time=3600)
            else:
                self.run_due(now)
        elif not self.paused_info(now)[0]:
            self._replan(now)
        self.publish_state(now, force_write=True)
        return woke

    # ---- APScheduler ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background scheduler (checks that are overdue run at once)."""
        from apscheduler.schedulers.background import BackgroundScheduler

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
        self._aps = BackgroundScheduler(timezone=self.tz, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self._unsubscribe = self.engine.bus.subscribe(self._on_event)
        now = self.clock()
        self._last_tick = now
        self._aps.add_job(self.on_tick, "interval", seconds=self.tick_seconds, id="tick",
                          next_run_time=self._dt(now + self.tick_seconds))
        self._plan(now)
        self._aps.start()
        self._started = True
        log.info("scheduler started (%s, pid %d): %s", self.owner, os.getpid(),
                 self._plan_text())
        self.publish_state(now, force_write=True)

    def stop(self, *, cancel: bool = True, log_every: float = 10.0) -> None:
        """Stop cleanly: no new work, cancel a running cycle, wait for it, then shut down."""
        self._stopping = True
        if cancel and (self._in_cycle or self._cycle_stage):
            log.info("cancelling the running cycle")
            with contextlib.suppress(Exception):
                self.engine.cancel_cycle()
        while not self._work.acquire(timeout=log_every):
            log.info("waiting for the running check or cycle to end")
        self._work.release()
        if self._aps is not None:
            with contextlib.suppress(Exception):
                self._aps.shutdown(wait=True)
            self._aps = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.publish_state(force_write=True)
        log.info("scheduler stopped")

    def apply_settings(self, settings: Any) -> None:
        """New intervals / switches take effect now, without a restart."""
        self._settings = settings
        if self.running:
            self._plan(self.clock())
            log.info("schedule re-planned: %s", self._plan_text())
        self.publish_state(force_write=True)

    def _dt(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def _plan(self, now: float) -> None:
        """(Re)create the interval jobs; each first runs when due by the saved timestamps."""
        for job in list(self._aps.get_jobs()):
            if job.id not in ("tick", "catch-up"):
                job.remove()
        for name in self.jobs():
            iv = self.interval(name)
            self._aps.add_job(self.run_job, "interval", args=[name], seconds=iv, id=name,
                              name=name, next_run_time=self._dt(self.next_due(name, now)),
                              misfire_grace_time=int(max(3600.0, iv)))

    def _replan(self, now: float) -> None:
        """Move each job's next run to what the saved timestamps say (e.g. after a manual
        check from the CLI, or a resume)."""
        if not self.running:
            return
        for name in self.jobs():
            job = self._aps.get_job(name)
            if job is None or job.next_run_time is None:
                continue
            want = self.next_due(name, now)
            if abs(job.next_run_time.timestamp() - want) > self._slack(self.interval(name)):
                job.modify(next_run_time=self._dt(want))

    def _plan_text(self) -> str:
        if not self.settings.enabled:
            return _DISABLED
        return ", ".join(f"{n} every {interval(self.interval(n))}" for n in self.jobs())

    # ---- state ----------------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        p = event.payload
        if isinstance(p, ev.CycleStarted):
            self._cycle_stage, self._cycle_progress = "starting", 0.0
        elif isinstance(p, ev.CycleStage):
            stage = p.stage or self._cycle_stage or "working"
            if stage == "recover" and not self._in_cycle and not self._cycle_stage:
                return  # a recovery note at start-up, not a running cycle
            progress = p.progress
            if stage == self._cycle_stage and abs(progress - self._cycle_progress) < 0.05:
                self._cycle_progress = progress
                return
            self._cycle_stage, self._cycle_progress = stage, progress
        elif isinstance(p, ev.CycleFinished):
            self._cycle_stage, self._cycle_progress = "", 0.0
        else:
            return
        self.publish_state()

    def state(self, now: float | None = None) -> SchedulerState:
        now = self.clock() if now is None else now
        paused, reason, until = self.paused_info(now)
        backoff_until, backoff_reason = self.backoff(now) if self.settings.enabled else (None, "")
        jobs = []
        for name in (*CHECKS, DEMO_FEED):
            if name == DEMO_FEED and name not in self.jobs():
                continue
            job = JobState(name=name, last_run=self.last_run(name))
            job.last_outcome = self._outcomes.get(name) or self._saved_outcome(name)
            if self._retrain_notes.get(name):
                job.last_outcome = f"{job.last_outcome} → {self._retrain_notes[name]}"
            if self.running and self.settings.enabled:
                aps_job = self._aps.get_job(name)
                if aps_job is not None and aps_job.next_run_time is not None:
                    job.next_run = aps_job.next_run_time.timestamp()
            jobs.append(job)
        return SchedulerState(
            running=self.running and not self._stopping, owner=self.owner, pid=os.getpid(),
            enabled=bool(self.settings.enabled), auto_retrain=bool(self.settings.auto_retrain),
            paused=paused, paused_reason=reason, paused_until=until,
            backoff_until=backoff_until, backoff_reason=backoff_reason, jobs=jobs,
            cycle_stage=self._cycle_stage or ("starting" if self._in_cycle else ""),
            cycle_progress=self._cycle_progress, retrain_due=self._retrain_due,
            updated_at=now,
        )

    def _saved_outcome(self, name: str) -> str:
        if name not in CHECKS:
            return ""
        last = self.engine.history.last_check(name)
        if not last:
            return ""
        d = last[1]
        if name == "age":
            return str(d.get("outcome") or "")
        return _drift_text(d) if name == "drift" else _perf_text(d)

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
