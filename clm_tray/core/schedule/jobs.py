"""What one scheduled job does when it runs: the age, drift, performance and demo-feed checks.

Each is one engine call (through ``EnginePort``; in the tray and the daemon the heavy ones run
in a worker process) turned into a ``CheckOutcome``: what happened, in words the state file and
the log show, plus the report's numbers. The age check also probes the backend, so "healthy"
in the tray is never hours old. Whether a job is due, and what the scheduler remembers of it,
stay in scheduler.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import CycleResult, Outcome
from clm_tray.core.config.settings import Settings
from clm_tray.core.schedule.state import _drift_text, _perf_text, _report_dict
from clm_tray.core.schedule.triggers import Trigger

log = logging.getLogger(__name__)

CHECKS = ("age", "drift", "performance")  # the order a catch-up runs them in
DEMO_FEED = "demo-feed"


@dataclass
class CheckOutcome:
    """What one job run did (``Scheduler.run_due`` returns a list of these)."""

    name: str  # "age" / "drift" / "performance" / "demo-feed" / "retrain"
    at: float
    outcome: str
    failed: bool = False  # the check raised, or the retrain it started failed
    trigger: Trigger | None = None
    cycle: CycleResult | None = None  # the result of a retrain this run started
    details: dict[str, Any] = field(default_factory=dict)


def run_check(engine: EnginePort, settings: Settings, name: str, now: float) -> CheckOutcome:
    """Run the check ``name`` now (no due test) under the scheduler's ``settings``; errors
    are the caller's to catch."""
    if name == "age":
        return _check_age(engine, settings, now)
    if name in ("drift", "performance") and engine.champion_age_hours() is None:
        return CheckOutcome(name, now, "no model deployed yet; nothing to check")
    if name == "drift":
        d = _report_dict(engine.drift())
        return CheckOutcome(name, now, _drift_text(d), details=d)
    if name == "performance":
        d = _report_dict(engine.performance())
        return CheckOutcome(name, now, _perf_text(d), details=d)
    if name == DEMO_FEED:
        rows = int(engine.feed_demo())
        return CheckOutcome(name, now, f"appended {rows} rows", details={"rows": rows})
    raise ValueError(f"unknown job {name!r}")


def _check_age(engine: EnginePort, settings: Settings, now: float) -> CheckOutcome:
    age = engine.champion_age_hours()
    rh = settings.retrain_hours
    if age is None:
        text = "no model deployed"
    elif age > rh:
        text = f"model {age:.1f} h old > {rh:g} h"
    else:
        text = f"model {age:.1f} h old (fresh)"
    text += _check_backend(engine, settings, age)
    d = {"age_hours": age, "retrain_hours": rh, "due": age is None or age > rh,
         "outcome": text}
    engine.history.add_check("age", d, at=now)
    return CheckOutcome("age", now, text, details=d)


def _check_backend(engine: EnginePort, settings: Settings, age: float | None) -> str:
    """Probe the backend with the age check, so 'healthy' in the tray is never hours old
    and a backend that died between deploys is noticed (and notified) within one interval."""
    if settings.resolved_backend == "none" or age is None:
        return ""
    try:
        report = engine.health()  # recorded and published by the engine
    except Exception as exc:  # a broken probe must not stop the age check
        log.warning("backend health probe failed: %s", exc)
        return ""
    return "" if report.ok else f"; backend unhealthy: {report.reason}"


def retrain_outcome(result: CycleResult, t: Trigger, now: float) -> CheckOutcome:
    """A retrain the scheduler started, as a job outcome (a cancel is not a failure)."""
    outcome = str(result.outcome or "")
    failed = Outcome.is_failure(outcome) if outcome else not result.ok
    text = f"{outcome or '?'}: {result.reason}"
    (log.error if failed else log.info)("retrain %s", text)
    return CheckOutcome("retrain", now, text.rstrip(": "), failed=failed, trigger=t,
                        cycle=result)
