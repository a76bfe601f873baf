"""When each scheduled job is due, read from saved timestamps, and what it last said.

A job's last run is the newer of the check saved in the history database and this process's
own last attempt (so a check that raised, and saved nothing, is not retried at every tick);
it is due once its interval (from the settings) has passed since then. The same records give
each job's last outcome for the state file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clm_tray.core.app.wording import interval
from clm_tray.core.config.settings import Settings
from clm_tray.core.registry.history import History
from clm_tray.core.schedule.jobs import CHECKS, DEMO_FEED
from clm_tray.core.schedule.state import _DISABLED, _drift_text, _perf_text
from clm_tray.core.schedule.timer import Plan


class Timetable:
    """The jobs the settings ask for, their intervals, last runs and next due times."""

    def __init__(self, history: History, settings: Callable[[], Settings]) -> None:
        self.history = history
        self._settings = settings  # the scheduler's current settings (they can change)
        self.attempted: dict[str, float] = {}  # job -> when this process last ran it
        self.memory: dict[str, tuple[float, dict[str, Any]]] = {}  # check -> (at, result)

    def jobs(self) -> list[str]:
        """The jobs the current settings ask for (none when disabled)."""
        s = self._settings()
        if not s.enabled:
            return []
        names = list(CHECKS)
        if s.demo_feed_minutes > 0:
            names.append(DEMO_FEED)
        return names

    def interval(self, name: str) -> float:
        s = self._settings()
        return {
            "age": s.check_minutes * 60.0,
            "drift": s.drift_hours * 3600.0,
            "performance": s.perf_hours * 3600.0,
            DEMO_FEED: s.demo_feed_minutes * 60.0,
        }[name]

    @staticmethod
    def slack(interval: float) -> float:
        """A job fired on time must count as due even if the last check ended a bit later."""
        return min(60.0, interval * 0.05)

    def last_run(self, name: str) -> float | None:
        """When this job last ran: saved in history, or attempted by this process (newer)."""
        times = [self.attempted.get(name)]
        if name in CHECKS:
            saved = self.history.last_check(name)
            times.append(saved[0] if saved else None)
        known = [t for t in times if t is not None]
        return max(known) if known else None

    def next_due(self, name: str, now: float) -> float:
        last = self.last_run(name)
        return now if last is None else max(now, last + self.interval(name))

    def due(self, now: float) -> list[str]:
        """The jobs whose interval has passed since their last run."""
        due = []
        for name in self.jobs():
            last = self.last_run(name)
            iv = self.interval(name)
            if last is None or now - last >= iv - self.slack(iv):
                due.append(name)
        return due

    def last_result(self, name: str) -> tuple[float, dict[str, Any]] | None:
        """The newer of the saved and the remembered result of a drift / performance check."""
        saved = self.history.last_check(name)
        mem = self.memory.get(name)
        if saved and mem:
            return saved if saved[0] >= mem[0] else mem
        return saved or mem

    def saved_outcome(self, name: str) -> str:
        """A check's last outcome in words, from the history database."""
        if name not in CHECKS:
            return ""
        last = self.history.last_check(name)
        if not last:
            return ""
        d = last[1]
        if name == "age":
            return str(d.get("outcome") or "")
        return _drift_text(d) if name == "drift" else _perf_text(d)

    def plans(self, now: float) -> list[Plan]:
        """The interval jobs for the timer; each first runs when due by the saved times."""
        return [Plan(name, self.interval(name), self.next_due(name, now))
                for name in self.jobs()]

    def text(self) -> str:
        if not self._settings().enabled:
            return _DISABLED
        return ", ".join(f"{n} every {interval(self.interval(n))}" for n in self.jobs())
