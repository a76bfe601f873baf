"""``EnginePort``: the one surface the CLI, the daemon, the scheduler and the GUI call.

Callers never build an engine themselves and never know where its work runs: they get an
``EnginePort`` from ``compose.open_engine(loaded, mode)`` and call typed methods that return
the plain dataclasses of ``status.py``. Two implementations satisfy it:

- ``service.Engine`` (mode ``"inline"``): every call runs in this process (the CLI's one-shot
  commands, tests, the worker process itself);
- ``proxy.WorkerEngine`` (mode ``"worker"``, the tray and the daemon): the cheap reads run here,
  each heavy call (retrain, checks, deploys, backend restarts, replay) runs in a spawned worker
  process, so the caller never imports pandas, XGBoost or scikit-learn.

Both share ``engine_base.EngineBase`` (store, history, bus, recovery, read models, scheduler
lifecycle); only the heavy calls differ. Everything here is a type: importing this module
imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from clm_tray.core.app.events import EventBus
    from clm_tray.core.app.status import (
        BackupRow,
        CycleRecord,
        CycleResult,
        DriftReport,
        EngineStatus,
        HealthReport,
        PerformanceReport,
        SchedulerState,
        VersionRow,
    )
    from clm_tray.core.backend.factory import Backend
    from clm_tray.core.config.settings import Settings
    from clm_tray.core.config.sources import LoadedSettings
    from clm_tray.core.ml.replay_result import ReplayResult
    from clm_tray.core.registry.history import History

#: Where an engine's heavy calls run: in this process, or in a worker process per call.
Mode = Literal["inline", "worker"]
MODES: tuple[Mode, ...] = ("inline", "worker")


class EnginePort(Protocol):
    """One workspace's engine as its callers see it (see the module docstring)."""

    loaded: LoadedSettings
    settings: Settings
    bus: EventBus  # progress and outcomes, published on the caller's side in both modes
    history: History  # the saved checks and cycles the scheduler decides from
    state_path: Path  # the scheduler's state and pause file
    clock: Callable[[], float]
    startup_warnings: list[str]  # problems the start-up recovery found (said once)

    # ---- the retrain cycle and manual actions (heavy: in the worker in "worker" mode) -------
    def retrain(self, trigger: str = "manual", deploy: bool = True,
                cancel: threading.Event | None = None, force: bool = False) -> CycleResult:
        """One retrain cycle (cycle.py); ``force`` trains even when nothing changed."""
        ...

    def cancel_cycle(self) -> None:
        """Stop the running retrain at its next safe point (outcome ``cancelled``)."""
        ...

    def rollback(self, version_id: str | None = None) -> CycleResult:
        """Put ``previous`` (or ``version_id``) back into the deploy folder, verified."""
        ...

    def promote(self, version_id: str | None = None) -> CycleResult:
        """Deploy the waiting challenger (or ``version_id``), verified."""
        ...

    def restart_backend(self) -> HealthReport:
        """Restart the backend and verify it serves the deployed model."""
        ...

    def health(self) -> HealthReport:
        """One probe of the health URL, judged against the deployed model."""
        ...

    # ---- checks (heavy) ----------------------------------------------------------------------
    def drift(self) -> DriftReport: ...

    def performance(self) -> PerformanceReport: ...

    def feed_demo(self) -> int:
        """Demo only: append the next hourly bar per symbol; returns the rows appended."""
        ...

    def replay(self, start: str | None = None,
               cancel: threading.Event | None = None) -> ReplayResult: ...

    # ---- reads (cheap: always in the caller's process) ----------------------------------------
    def setup_problem(self) -> str | None:
        """Why no retrain can run yet (nothing configured), else None."""
        ...

    def status(self) -> EngineStatus: ...

    def versions(self) -> list[VersionRow]: ...

    def backups(self) -> list[BackupRow]: ...

    def history_rows(self, n: int = 50) -> list[CycleRecord]: ...

    def accuracy_history(self) -> list[dict[str, Any]]: ...

    def aliases(self) -> dict[str, str | None]:
        """The store's champion / previous / challenger version ids."""
        ...

    def champion_importance(self) -> dict[str, float]:
        """The champion's feature importance by gain (empty without a champion)."""
        ...

    def champion_age_hours(self) -> float | None: ...

    def scheduler_state(self) -> SchedulerState: ...

    def backend(self) -> Backend:
        """The configured backend (for starting the demo's reference server)."""
        ...

    # ---- the scheduler and settings ----------------------------------------------------------
    def start_scheduler(self, owner: str = "tray") -> None: ...

    def stop_scheduler(self) -> None: ...

    @property
    def scheduler_running(self) -> bool:
        """Whether this engine runs the scheduler (a project switch starts the new one too)."""
        ...

    def pause(self, reason: str, until: datetime | None = None) -> None: ...

    def resume(self) -> None: ...

    def apply_settings(self, loaded: LoadedSettings) -> None: ...

    def close(self) -> None: ...
