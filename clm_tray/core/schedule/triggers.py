"""Why a retrain is due, and what holds an automatic one back: decided from saved state only.

The scheduler never trusts its memory of what happened; these functions read the history
database (the last successful cycle, the run of failures, the last drift / performance check)
and the champion's age, so a restarted app or a laptop that slept decides exactly as one that
ran all along. Pure functions of what they are given: the scheduler's tests drive them with a
hand-moved clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from clm_tray.core.app.status import CycleRecord, Outcome
from clm_tray.core.config.settings import Settings
from clm_tray.core.registry.history import History
from clm_tray.core.schedule.state import _perf_why, clock_text

#: The last saved (or remembered) result of a check: (when, the report as a dict).
LastResult = Callable[[str], "tuple[float, dict[str, Any]] | None"]


@dataclass
class Trigger:
    """Why a retrain is due: ``text`` goes to the cycle record, ``why`` to people."""

    kind: str  # "age" / "drift" / "performance"
    text: str  # "age: model 25.0 h old > 24 h"
    why: str  # "model is 25.0 h old (> 24 h)"


def last_ok_cycle(history: History) -> CycleRecord | None:
    """The newest cycle that tried something and did not fail."""
    for rec in history.cycles(50):
        # a cancelled cycle tried nothing, a start-up reconcile trained nothing: neither
        # may postpone the next age retrain
        if rec.outcome not in ("running", Outcome.CANCELLED, Outcome.RECONCILED) \
                and not rec.failed:
            return rec
    return None


def backoff(history: History, settings: Settings, raised: tuple[float, str] | None,
            now: float, tz: tzinfo) -> tuple[float | None, str]:
    """(until, reason) while automatic retrains wait after failed cycles, else (None, "").

    With n failures in a row the wait is retrain_hours x backoff_fraction x 2^(n-1) after
    the last one, never longer than retrain_hours. ``raised`` is a retrain that raised before
    it could record itself (it counts as one more failure). A manual retrain does not ask.
    """
    failures = history.failures_since_success()
    n = len(failures)
    end = (failures[0].finished_at or failures[0].started_at) if failures else None
    reason = failures[0].reason if failures else ""
    if raised is not None:
        last = history.last_cycle()
        last_at = (last.finished_at or last.started_at) if last else None
        if last_at is None or raised[0] > last_at:
            n, end, reason = n + 1, raised[0], raised[1]
    if n == 0 or end is None:
        return None, ""
    full = settings.retrain_hours * 3600.0
    delay = min(full, full * settings.backoff_fraction * 2 ** (n - 1))
    until = end + delay
    if now >= until:
        return None, ""
    what = "the last cycle failed" if n == 1 else f"the last {n} cycles failed"
    return until, f"paused until {clock_text(until, tz, now)} because {what}: {reason}"


def pending_triggers(history: History, settings: Settings, age: float | None,
                     last_result: LastResult, now: float) -> list[Trigger]:
    """Every reason to retrain now (age first): the champion is too old or missing, or a
    drift / performance check after the last successful cycle raised its flag."""
    s = settings
    last_ok = last_ok_cycle(history)
    ok_at = (last_ok.finished_at or last_ok.started_at) if last_ok else None
    out: list[Trigger] = []
    # A cycle that ran but kept the champion (rejected / waiting) is not retried by age
    # before a full interval: the same data would give the same answer.
    recently_tried = ok_at is not None and now - ok_at < s.retrain_hours * 3600.0
    if not recently_tried:
        if age is None:
            out.append(Trigger("age", "age: no model deployed yet", "no model is deployed"))
        elif age > s.retrain_hours:
            out.append(Trigger(
                "age", f"age: model {age:.1f} h old > {s.retrain_hours:g} h",
                f"model is {age:.1f} h old (> {s.retrain_hours:g} h)"))
    for kind, flag in (("drift", "drifted"), ("performance", "degraded")):
        last = last_result(kind)
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
