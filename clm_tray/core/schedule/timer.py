"""The alarm clock under the scheduler: APScheduler, kept to "wake me up at these times".

APScheduler only wakes the scheduler up; every job then asks the saved timestamps whether it
is due (scheduler.py). This wrapper owns the background APScheduler: one heartbeat ``tick``,
one interval job per check whose first run is when the saved timestamps say, re-planning when
those timestamps moved, and a one-off catch-up after a wake from sleep.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

_KEEP = ("tick", "catch-up")  # jobs that re-planning leaves alone


@dataclass
class Plan:
    """One interval job: run ``run(name)`` every ``interval`` s, first at ``first_run``."""

    name: str
    interval: float
    first_run: float


class Timer:
    """A background APScheduler with the scheduler's jobs on it (see the module docstring)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.aps: Any = None

    @property
    def running(self) -> bool:
        return self.aps is not None and bool(self.aps.running)

    def start(self, tick: Callable[[], Any], tick_seconds: float, now: float,
              run: Callable[[str], Any], plans: list[Plan]) -> None:
        """Start ticking every ``tick_seconds`` and the interval jobs of ``plans``."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self.aps = BackgroundScheduler(timezone=self.tz, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        self.aps.add_job(tick, "interval", seconds=tick_seconds, id="tick",
                         next_run_time=self._dt(now + tick_seconds))
        self.plan(run, plans)
        self.aps.start()

    def plan(self, run: Callable[[str], Any], plans: list[Plan]) -> None:
        """(Re)create the interval jobs; each first runs when due by the saved timestamps."""
        for job in list(self.aps.get_jobs()):
            if job.id not in _KEEP:
                job.remove()
        for p in plans:
            self.aps.add_job(run, "interval", args=[p.name], seconds=p.interval, id=p.name,
                             name=p.name, next_run_time=self._dt(p.first_run),
                             misfire_grace_time=int(max(3600.0, p.interval)))

    def move(self, name: str, want: float, slack: float) -> None:
        """Move a job's next run to ``want`` if it is more than ``slack`` s away from it."""
        job = self.aps.get_job(name) if self.running else None
        if job is None or job.next_run_time is None:
            return
        if abs(job.next_run_time.timestamp() - want) > slack:
            job.modify(next_run_time=self._dt(want))

    def next_run(self, name: str) -> float | None:
        job = self.aps.get_job(name) if self.running else None
        return job.next_run_time.timestamp() if job and job.next_run_time else None

    def catch_up(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once, soon, on APScheduler's thread (the tick must never block)."""
        self.aps.add_job(fn, trigger="date", id="catch-up", replace_existing=True,
                         coalesce=True, max_instances=1, misfire_grace_time=3600)

    def shutdown(self) -> None:
        if self.aps is not None:
            with contextlib.suppress(Exception):
                self.aps.shutdown(wait=True)
            self.aps = None

    def _dt(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)
