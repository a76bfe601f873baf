"""A pause of the scheduled checks, as the running scheduler sees it: set, over, or lifted.

The pause is a small file next to the state file (state.py), so `clm-tray pause` in another
process, the tray and the daemon all share it and it survives a restart. A pause with an end
time lifts itself: the first look after that time clears the file and re-plans the jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

from clm_tray.core.schedule.state import clear_pause, clock_text, read_pause, write_pause

log = logging.getLogger(__name__)


class Pause:
    """The pause file of one store, for the scheduler that owns ``owner``."""

    def __init__(self, state_path: Path, tz: tzinfo, owner: str,
                 on_lifted: Callable[[float], None]) -> None:
        self.state_path = state_path
        self.tz = tz
        self.owner = owner
        self.on_lifted = on_lifted  # the jobs' next runs move back to their due times

    def info(self, now: float) -> tuple[bool, str, float | None]:
        """(paused, reason, until); a pause whose ``until`` has passed is cleared here."""
        p = read_pause(self.state_path)
        if not p:
            return False, "", None
        until = float(p["until"]) if p.get("until") is not None else None
        if until is not None and now >= until:
            if clear_pause(self.state_path):
                log.info("resumed: the pause until %s is over", clock_text(until, self.tz, now))
                self.on_lifted(now)
            return False, "", None
        return True, str(p.get("reason") or ""), until

    def set(self, reason: str, until: datetime | float | None, now: float) -> None:
        """Stop running checks and retrains (persisted: survives a restart, seen by the CLI)."""
        if isinstance(until, datetime):
            until_ts: float | None = until.timestamp()
        else:
            until_ts = float(until) if until is not None else None
        write_pause(self.state_path, reason, until_ts, by=self.owner, at=now)
        tail = f" until {clock_text(until_ts, self.tz, now)}" if until_ts else ""
        log.info("paused%s: %s", tail, reason)

    def lift(self) -> None:
        if clear_pause(self.state_path):
            log.info("resumed")
