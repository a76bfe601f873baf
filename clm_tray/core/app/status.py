"""The plain data the engine hands to the CLI and the GUI.

Nothing here computes anything; these are the nouns the user sees: a champion, a cycle, a
version row, the scheduler's state. The GUI formats them and decides nothing. They become JSON
and come back from it through ``clm_tray.core.serialize`` only (``to_jsonable`` /
``from_jsonable``), so no class here carries its own converter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Literal


class Health(str, Enum):
    """The one-word state the tray icon shows."""

    HEALTHY = "healthy"  # fresh model, backend verified (or not checked by choice)
    ATTENTION = "attention"  # stale model, drift over threshold, challenger waiting
    WORKING = "working"  # a cycle is running
    ERROR = "error"  # last cycle failed, backend unhealthy
    PAUSED = "paused"  # paused or disabled


class Outcome(str, Enum):
    """How a cycle (retrain, rollback, promote) ended: the one rule for "did it fail".

    A ``str`` enum so history rows, events and ``--json`` keep the plain strings they had.
    "no edge", "unchanged" and "cancelled" are deliberate non-events, not failures: they
    never start a back-off, a failure notification or the tray's error state.
    """

    DEPLOYED = "deployed"
    # healthy after a real restart, but /health does not say which model it loaded (amber)
    DEPLOYED_UNIDENTIFIED = "deployed (identity not reported)"
    FAILED = "failed"
    ROLLED_BACK_AFTER_FAILURE = "failed, rolled back"
    ROLLBACK_FAILED = "rollback failed"
    ROLLED_BACK = "rolled back"
    REJECTED = "rejected"
    WAITING = "waiting"
    TRAINED = "trained"
    AWAITING_APPROVAL = "awaiting approval"
    NO_EDGE = "no edge"
    UNCHANGED = "unchanged"
    CANCELLED = "cancelled"
    RECONCILED = "reconciled"  # after a crash: backend restarted and verified at start-up

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        return self in _FAILURES

    @classmethod
    def is_failure(cls, outcome: str | None) -> bool:
        """For outcomes read back as text (history rows, events); unknown text is no failure."""
        try:
            return cls(outcome).failed
        except ValueError:
            return False


_FAILURES = frozenset({Outcome.FAILED, Outcome.ROLLED_BACK_AFTER_FAILURE,
                       Outcome.ROLLBACK_FAILED})


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
    shadow: ShadowResult | None = None
    adopted: bool = False  # deployed before clm-tray; recorded, never trained or measured by it
    files: list[str] = field(default_factory=list)  # adopted: the files it restores


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
    shadow: ShadowResult | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return Outcome.is_failure(self.outcome)


@dataclass
class CycleResult:
    ok: bool
    outcome: Outcome
    reason: str
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    shadow: ShadowResult | None = None
    health: HealthReport | None = None
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
    backend: HealthReport | BackendUnknown | None  # the last health check, or "unknown"
    drift: DriftCheck | None  # the last drift check
    performance: PerformanceCheck | None  # the last live-performance check
    scheduler: SchedulerState
    data_rows: int | None = None
    data_symbols: int | None = None
    workspace: str = ""


# ---- check reports (computed in monitor.py / backend.py, plain data here so they cross
# processes without pulling pandas or xgboost into whoever reads them) -----------------------
#: ``HealthReport.identity`` when the backend answered healthy but said nothing about which
#: model it loaded: the deploy is recorded as ``deployed (identity not reported)``, amber.
IDENTITY_NOT_REPORTED = "not reported"
IDENTITY_HINT = ("Backend is up but does not say which model it loaded: add model_sha256 to "
                 "its /health (README, \"Report the loaded model\")")


@dataclass
class HealthReport:
    """One look at the backend's health URL, in plain data (the GUI and CLI format it)."""

    ok: bool
    url: str
    status_code: int | None
    latency_ms: float | None
    reported_sha256: str | None
    reported_version: str | None
    reason: str
    checked_at: float = field(default_factory=time.time)
    skipped: bool = False
    # "verified" (the reported model is the deployed one), IDENTITY_NOT_REPORTED, or "".
    identity: str = ""
    model_loaded: bool | None = None  # a "model_loaded"-style flag in the answer, if any
    restarted: bool | None = None  # the backend's start time changed across the restart


@dataclass
class BackendUnknown:
    """The backend's state is unknown: the deploy folder changed after its last health check
    (``backend_pending.backend_view``), so no earlier "healthy" may be shown as current."""

    url: str | None  # the last check's health URL, None before any check
    reason: str  # "unknown — not checked since the deploy of v0004 at 2026-11-28 14:30"
    checked_at: float | None  # the last health check, None before any
    changed_at: float  # when the deploy folder changed
    ok: None = None
    state: Literal["unknown"] = "unknown"  # what tells it from a HealthReport in JSON


@dataclass
class FeatureDrift:
    feature: str
    psi: float
    ks_d: float | None  # None when either side has no finite values
    importance: float  # the weight this feature got in the score (weights sum to 1)
    over: bool  # this feature's own PSI is above the threshold


@dataclass
class DriftReport:
    score: float  # importance-weighted mean PSI
    threshold: float
    drifted: bool  # enough and score > threshold
    window_rows: int
    window_start: str  # ISO-8601 UTC of the window's first row, "" without timestamps
    window_end: str
    features: list[FeatureDrift] = field(default_factory=list)  # highest PSI first
    enough: bool = True
    reason: str = ""
    checked_at: float = 0.0
    # Informational, never part of the decision: the 95th percentile of the same score on
    # windows of the training data as long (in time) as this one. None without timestamps or
    # when the training data is shorter than two such windows. See docs/drift.md.
    typical_score: float | None = None
    min_rows: int = 0  # new rows a score needs (the user is told "needs N, has M")


@dataclass
class DriftCheck(DriftReport):
    """A drift report as recorded in history and shown in the status."""

    version: str | None = None  # the champion it was measured for


@dataclass
class PerformanceReport:
    rows: int
    accuracy: float | None  # None when there are no labelled rows
    auc: float | None  # None when the rows hold one class only
    log_loss: float | None
    test_accuracy: float | None  # the champion's own out-of-time test (None: adopted model)
    baseline: float | None  # majority-class baseline from training
    drop: float | None  # test_accuracy - accuracy
    degraded: bool  # enough and drop > max_drop
    enough: bool
    reason: str
    checked_at: float
    min_rows: int = 0  # labelled rows a verdict needs (the user is told "needs N, has M")


@dataclass
class PerformanceCheck(PerformanceReport):
    """A live-performance report as recorded in history and shown in the status."""

    version: str | None = None  # the champion it was measured for


@dataclass
class ShadowResult:
    """May a candidate replace the champion? The shadow test's verdict (monitor/shadow.py),
    or a short one when no paired test ran (no champion yet, different feature sets, an
    adopted champion clm-tray cannot load): then only decision, reason and rows are set.

    The paired figures are None in a short verdict and left out of its JSON, so the short
    and the full shapes stay the ones history rows and notes have always held.
    """

    decision: str  # "promote" | "reject" | "wait"
    reason: str = ""
    rows: int = 0
    candidate_accuracy: float | None = None
    champion_accuracy: float | None = None
    candidate_only: int | None = None  # b: candidate right, champion wrong
    champion_only: int | None = None  # c: champion right, candidate wrong
    p_value: float | None = None  # exact two-sided McNemar; None: no paired test ran
    candidate_log_loss: float | None = None
    champion_log_loss: float | None = None
    min_rows: int | None = None  # rows a verdict needs (the user is told how many more)
    champion: str | None = None  # the version it was compared with
    features_differ: str | None = None  # "missing: …; new: …" when the feature sets differ

    EXTRAS: ClassVar[frozenset[str]] = frozenset({"min_rows", "champion", "features_differ"})
    PAIRED: ClassVar[frozenset[str]] = frozenset({
        "candidate_accuracy", "champion_accuracy", "candidate_only", "champion_only",
        "p_value", "candidate_log_loss", "champion_log_loss"})

    @property
    def tested(self) -> bool:
        """A paired test ran (its figures may still be None, e.g. on zero rows)."""
        return self.p_value is not None

    @property
    def OMIT_NONE(self) -> frozenset[str]:  # noqa: N802 - serialize.to_jsonable's hook
        return self.EXTRAS if self.tested else self.EXTRAS | self.PAIRED
