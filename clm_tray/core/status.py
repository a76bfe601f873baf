"""The plain data the engine hands to the CLI and the GUI.

Nothing here computes anything; these are the nouns the user sees: a champion, a cycle, a
version row, the scheduler's state. The GUI formats them and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Health(str, Enum):
    """The one-word state the tray icon shows."""

    HEALTHY = "healthy"  # fresh model, backend verified (or not checked by choice)
    ATTENTION = "attention"  # stale model, drift over threshold, challenger waiting
    WORKING = "working"  # a cycle is running
    ERROR = "error"  # last cycle failed, backend unhealthy
    PAUSED = "paused"  # paused or disabled


@dataclass
class JobState:
    name: str  # "age", "drift", "performance", "demo-feed"
    last_run: float | None = None
    last_outcome: str = ""
    next_run: float | None = None


@dataclass
class SchedulerState:
    running: bool = False  # a scheduler (daemon or tray) is alive
    owner: str = ""  # "tray" / "daemon" / "" and its pid
    pid: int | None = None
    enabled: bool = True
    auto_retrain: bool = True
    paused: bool = False
    paused_reason: str = ""
    paused_until: float | None = None
    backoff_until: float | None = None
    backoff_reason: str = ""
    jobs: list[JobState] = field(default_factory=list)
    cycle_stage: str = ""  # non-empty while a cycle runs
    cycle_progress: float = 0.0
    retrain_due: str = ""  # why a retrain is due but not done (auto_retrain off)
    updated_at: float | None = None

    def job(self, name: str) -> JobState | None:
        return next((j for j in self.jobs if j.name == name), None)


@dataclass
class VersionRow:
    id: str
    trained_at: str
    test_accuracy: float | None
    train_accuracy: float | None
    auc: float | None
    baseline: float | None
    status: str  # champion / previous / challenger / candidate / rejected
    size: int
    sha256: str
    leakage: bool = False
    shadow: dict[str, Any] | None = None


@dataclass
class BackupRow:
    name: str
    created: str
    version: str | None
    sha256: str | None
    size: int


@dataclass
class CycleRecord:
    id: int
    started_at: float
    finished_at: float | None
    trigger: str
    outcome: str  # deployed / trained / waiting / rejected / failed / failed, rolled back / ...
    reason: str
    version: str | None
    champion_before: str | None
    duration_s: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CycleResult:
    ok: bool
    outcome: str
    reason: str
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    leakage: bool = False
    history_id: int | None = None


@dataclass
class EngineStatus:
    health: Health
    summary: str  # one line for the tray status line / tooltip
    champion: VersionRow | None
    age_hours: float | None
    fresh: bool
    retrain_hours: float
    challenger: VersionRow | None
    last_cycle: CycleRecord | None
    backend: dict[str, Any] | None  # HealthReport as dict (last known)
    drift: dict[str, Any] | None  # last DriftReport as dict
    performance: dict[str, Any] | None  # last PerformanceReport as dict
    scheduler: SchedulerState
    data_rows: int | None = None
    data_symbols: int | None = None
    workspace: str = ""
