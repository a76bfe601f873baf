"""The scheduler's shared state on disk, and the words it uses to describe it.

Another process (`clm-tray status`, the tray app, `clm-tray pause`) never talks to a running
scheduler; it reads the state file the scheduler refreshes every tick and sets or clears the
small pause file next to it. This module is that file-level contract: reading the state back
(with the liveness test that turns a dead scheduler's state into "not running"), the pause file,
and the one-line texts for times, the state and the check results. It imports nothing from the
scheduler itself, so readers stay light.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from clm_tray.core.app.status import SchedulerState
from clm_tray.core.app.wording import pct, points
from clm_tray.core.fsutil import atomic_write_json, read_json
from clm_tray.core.serialize import from_jsonable, to_jsonable

TICK_SECONDS = 60.0
STALE_TICKS = 4  # a state file not refreshed for this many ticks belongs to a dead scheduler
PAUSE_FILE = "scheduler_pause.json"
_DISABLED = "disabled (QT_CLM_ENABLED=false)"


# ---- the shared state file ---------------------------------------------------------------------
def pause_path(state_path: Path) -> Path:
    """The pause is its own small file so any process can set it without racing the ticks."""
    return Path(state_path).with_name(PAUSE_FILE)


def write_pause(state_path: Path, reason: str, until: float | None, *, by: str = "",
                at: float | None = None) -> None:
    """Pause whichever scheduler uses this store (this process or another one)."""
    atomic_write_json(pause_path(state_path), {
        "reason": reason, "until": until, "by": by, "at": at if at is not None else time.time(),
    })


def clear_pause(state_path: Path) -> bool:
    """Resume; returns whether a pause was set."""
    try:
        pause_path(state_path).unlink()
        return True
    except FileNotFoundError:
        return False


def read_pause(state_path: Path) -> dict[str, Any] | None:
    try:
        d = read_json(pause_path(state_path))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def pid_alive(pid: int | None) -> bool:
    """Is this process id alive? (Never sends a signal that could stop it.)"""
    if not pid or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return bool(ok) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_state(path: Path, clock: Callable[[], float] = time.time,
               tick_seconds: float = TICK_SECONDS) -> SchedulerState | None:
    """The state another process's scheduler last wrote, or None when there is none.

    When its owner is dead, or the file was not refreshed for a few ticks, the state comes back
    with ``running=False`` and no next runs: nothing is scheduled any more.
    """
    try:
        raw = read_json(Path(path))
        state = from_jsonable(SchedulerState, raw)
    except (OSError, ValueError, TypeError):
        return None
    now = clock()
    pause = read_pause(path)
    state.paused, state.paused_reason, state.paused_until = False, "", None
    if pause and not (pause.get("until") and now >= float(pause["until"])):
        state.paused = True
        state.paused_reason = str(pause.get("reason") or "")
        state.paused_until = float(pause["until"]) if pause.get("until") else None
    fresh = state.updated_at is not None and now - state.updated_at <= STALE_TICKS * tick_seconds
    if not (state.running and fresh and pid_alive(state.pid)):
        state.running = False
        state.cycle_stage, state.cycle_progress = "", 0.0
        for job in state.jobs:
            job.next_run = None
    return state


def local_zone() -> tzinfo:
    try:
        import tzlocal

        return tzlocal.get_localzone()
    except Exception:  # no tzlocal, or a zone it cannot name
        return timezone.utc


def clock_text(ts: float | None, tz: tzinfo | None = None, now: float | None = None) -> str:
    """'14:30' today, 'Tue 14:30' within a week, else '2026-12-01 14:30'."""
    if ts is None:
        return ""
    tz = tz or local_zone()
    when = datetime.fromtimestamp(ts, tz)
    ref = datetime.fromtimestamp(time.time() if now is None else now, tz)
    if when.date() == ref.date():
        return when.strftime("%H:%M")
    if abs(ts - ref.timestamp()) < 6 * 86400:
        return when.strftime("%a %H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def describe_state(state: SchedulerState, tz: tzinfo | None = None,
                   now: float | None = None) -> str:
    """One line for a status bar or `clm-tray status`: what the scheduler does and why."""
    if not state.enabled:
        return _DISABLED
    if not state.running:
        return "not running (start the tray app or `clm-tray run`)"
    if state.cycle_stage:
        return f"retraining: {state.cycle_stage} ({state.cycle_progress * 100:.0f} %)"
    if state.paused:
        until = f" until {clock_text(state.paused_until, tz, now)}" if state.paused_until else ""
        return f"paused{until}: {state.paused_reason}"
    parts = []
    if state.backoff_until:
        parts.append(state.backoff_reason)
    if state.retrain_due:
        parts.append(f"retrain due: {state.retrain_due}")
    upcoming = [j for j in state.jobs if j.next_run is not None]
    if upcoming:
        nxt = min(upcoming, key=lambda j: j.next_run or 0.0)
        parts.append(f"next {nxt.name} check at {clock_text(nxt.next_run, tz, now)}")
    return "; ".join(parts) or "running"


# ---- formatting the reasons ---------------------------------------------------------------------
def _report_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return dict(report)
    if hasattr(report, "__dataclass_fields__"):
        return to_jsonable(report)
    return {k: getattr(report, k) for k in dir(report) if not k.startswith("_")
            and not callable(getattr(report, k))}


def _drift_text(d: dict[str, Any]) -> str:
    if not d.get("enough", True):
        return f"not enough new rows: {d.get('reason', '')}".rstrip(": ")
    score, thr = float(d.get("score") or 0.0), float(d.get("threshold") or 0.0)
    if d.get("drifted"):
        return f"drifted: score {score:.3f} > {thr:g}"
    return f"no drift: score {score:.3f} <= {thr:g}"


def _perf_numbers(d: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    acc, drop, test = d.get("accuracy"), d.get("drop"), d.get("test_accuracy")
    if test is None and acc is not None and drop is not None:
        test = acc + drop
    if drop is None and acc is not None and test is not None:
        drop = test - acc
    return acc, drop, test


def _perf_text(d: dict[str, Any]) -> str:
    if not d.get("enough", True):
        return f"not enough new rows: {d.get('reason', '')}".rstrip(": ")
    acc, drop, test = _perf_numbers(d)
    if d.get("degraded"):
        return f"degraded: {_perf_why(d)}"
    return f"live accuracy {pct(acc)} (test {pct(test)})"


def _perf_why(d: dict[str, Any]) -> str:
    acc, drop, test = _perf_numbers(d)
    gap = "? points" if drop is None else points(drop)
    return f"live accuracy {pct(acc)} is {gap} below test {pct(test)}"
