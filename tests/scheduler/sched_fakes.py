"""A small engine for the scheduler's timing tests: real History, real EventBus, real files.

Only the expensive parts are stand-ins: ``retrain`` records a cycle in the history instead of
training, ``drift`` / ``performance`` record a check with the numbers the test chose. The real
Engine's retrain cycle is tested elsewhere (and end to end in test_daemon_real_engine.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from clm_tray.core.app import events as ev
from clm_tray.core.app.events import EventBus
from clm_tray.core.app.status import CycleResult, HealthReport, Outcome
from clm_tray.core.config.settings import Settings
from clm_tray.core.registry.history import History

T0 = 1_790_000_000.0  # a fixed wall-clock start (2026-09-21)
HOUR = 3600.0


class Clock:
    """The wall clock the tests move by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float = 0.0, minutes: float = 0.0, seconds: float = 0.0) -> float:
        self.now += hours * HOUR + minutes * 60 + seconds
        return self.now


class FakeEngine:
    def __init__(self, root: Path, clock: Any, **settings: Any) -> None:
        self.settings = Settings(**settings)
        self.history = History(Path(root) / "history.sqlite")
        self.bus = EventBus()
        self.state_path = Path(root) / "scheduler_state.json"
        self.clock = clock
        self.trained_at: float | None = clock()  # a fresh champion
        self.retrains: list[str] = []
        self.fail_reasons: list[str] = []  # each retrain pops one; empty list = success
        self.raise_error: Exception | None = None
        self.drift_score = 0.01
        self.accuracy, self.test_accuracy = 0.543, 0.543
        self.drift_calls = self.perf_calls = self.fed = 0
        self.cancel = threading.Event()
        self.block_retrain = False  # the daemon test: "train" until cancelled
        self.on_retrain_started: Any = None

    def champion_age_hours(self) -> float | None:
        return None if self.trained_at is None else (self.clock() - self.trained_at) / HOUR

    def retrain(self, trigger: str) -> CycleResult:
        if self.raise_error is not None:
            raise self.raise_error
        self.retrains.append(trigger)
        cid = self.history.start_cycle(trigger, None, at=self.clock())
        self.bus.emit(ev.CycleStarted(trigger=trigger, cycle=cid))
        self.bus.emit(ev.CycleStage(stage="train", progress=0.3, message="training"))
        if self.on_retrain_started is not None:
            self.on_retrain_started()
        if self.block_retrain:
            self.cancel.wait()
        if self.cancel.is_set():
            outcome, reason, ok = "cancelled", "cancelled; nothing was stored", False
        elif self.fail_reasons:
            outcome, reason, ok = "failed", self.fail_reasons.pop(0), False
        else:
            outcome, reason, ok = "deployed", "", True
            self.trained_at = self.clock()
        self.history.finish_cycle(cid, outcome=outcome, reason=reason, at=self.clock())
        self.bus.emit(ev.CycleFinished(outcome=Outcome(outcome), reason=reason, ok=ok,
                                       cycle=cid))
        return CycleResult(ok=ok, outcome=Outcome(outcome), reason=reason, history_id=cid)

    def cancel_cycle(self) -> None:
        self.cancel.set()

    def drift(self) -> Any:
        self.drift_calls += 1
        d = {"score": self.drift_score, "threshold": self.settings.drift_threshold,
             "drifted": self.drift_score > self.settings.drift_threshold, "enough": True,
             "reason": ""}
        self.history.add_check("drift", d, at=self.clock())
        return SimpleNamespace(**d)

    def performance(self) -> Any:
        self.perf_calls += 1
        drop = self.test_accuracy - self.accuracy
        d = {"accuracy": self.accuracy, "test_accuracy": self.test_accuracy, "drop": drop,
             "degraded": drop > self.settings.perf_drop, "enough": True, "reason": ""}
        self.history.add_check("performance", d, at=self.clock())
        return SimpleNamespace(**d)

    def setup_problem(self) -> str | None:
        return None

    def health(self) -> HealthReport:
        return HealthReport(ok=True, url="", status_code=None, latency_ms=None,
                            reported_sha256=None, reported_version=None,
                            reason="not checked (no backend)", skipped=True)

    def feed_demo(self) -> int:
        self.fed += 1
        return 91
