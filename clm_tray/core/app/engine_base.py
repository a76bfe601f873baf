"""What both engine modes share: opening a workspace, reading it, running its scheduler.

``EngineBase`` holds one workspace's store, history, bus and clock. Opening it wires the Redis
mirror (``startup.attach_redis``), finishes or undoes a deploy a crash interrupted and adopts
the model already deployed (``startup.recover`` / ``startup.adopt``); then it answers the cheap
reads (readmodels.py) and owns the scheduler's lifecycle. The heavy calls of ``EnginePort``
(retrain, checks, deploys, restarts, replay) are NOT here: ``service.Engine`` runs them in this
process, ``proxy.WorkerEngine`` in a worker process. Nothing here imports pandas or XGBoost.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clm_tray.core.app import events as ev
from clm_tray.core.app import readmodels, startup
from clm_tray.core.app.cycle_run import CycleContext
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
from clm_tray.core.config.settings import Settings
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.errors import ConfigError
from clm_tray.core.registry.history import History
from clm_tray.core.registry.store import ModelStore

if TYPE_CHECKING:
    from clm_tray.core.backend.factory import Backend
    from clm_tray.core.ml.replay_result import ReplayResult
    from clm_tray.core.registry.deploy import Deployer
    from clm_tray.core.schedule.scheduler import Scheduler


class EngineBase(ABC):
    """One workspace's store, deploy folder, backend, history, bus and scheduler; the heavy
    calls are each mode's own (abstract here, so a mode that forgets one cannot be built)."""

    def __init__(self, loaded: LoadedSettings, bus: ev.EventBus | None = None,
                 clock: Callable[[], float] = time.time, *, train_ahead: bool = True) -> None:
        self.loaded = loaded
        #: Start a cycle's training process while it loads (someone waits on the CLI); a
        #: worker does not, to keep the tray's CPU share during the load (CycleContext).
        self.train_ahead = train_ahead
        self.settings: Settings = loaded.settings
        self.bus = bus or ev.EventBus()
        self.clock = clock
        self.store = ModelStore(self.settings.resolved_store_dir)
        self.history = History(self.store.history_path)
        self.state_path = self.store.root / "scheduler_state.json"
        self.startup_warnings: list[str] = []
        self._cancel = threading.Event()
        self._scheduler: Scheduler | None = None
        startup.attach_redis(self.settings, self.bus)
        self._recover()
        startup.adopt(self._ctx())

    # ---- wiring -------------------------------------------------------------------------
    def _ctx(self) -> CycleContext:
        """What the retrain cycle and the manual actions work with."""
        return CycleContext(
            settings=self.settings, store=self.store, history=self.history, bus=self.bus,
            deployer_factory=self.deployer, backend_factory=self.backend, clock=self.clock,
            train_ahead=self.train_ahead,
        )

    def deployer(self) -> Deployer:
        from clm_tray.core.registry.deploy import Deployer
        from clm_tray.core.registry.formats import check_model_file

        s = self.settings
        deploy_dir = s.resolved_deploy_dir
        if deploy_dir is None:
            raise ConfigError(
                "QT_CLM_DEPLOY_DIR is not set; point it at the backend's models folder "
                "(or set QT_CLM_PROJECT_DIR)."
            )
        check_model_file(s.model_file)
        return Deployer(self.store, deploy_dir, model_file=s.model_file,
                        backup_keep=s.backup_keep, write_pickle=s.deploy_pickle)

    def backend(self) -> Backend:
        from clm_tray.core.backend.factory import make_backend

        return make_backend(self.settings, self.store.root)

    def _recover(self) -> None:
        """Finish or undo what a crash (of this process or of a worker) left half done."""
        startup.recover(self._ctx(), self.startup_warnings, self._deployed_meta)

    def _deployed_meta(self) -> dict[str, Any] | None:
        return readmodels.deployed_meta(self.settings, self.deployer)

    # ---- the heavy calls: where they run is what tells the two modes apart -----------------
    @abstractmethod
    def retrain(self, trigger: str = "manual", deploy: bool = True,
                cancel: threading.Event | None = None, force: bool = False) -> CycleResult: ...

    @abstractmethod
    def rollback(self, version_id: str | None = None) -> CycleResult: ...

    @abstractmethod
    def promote(self, version_id: str | None = None) -> CycleResult: ...

    @abstractmethod
    def restart_backend(self) -> HealthReport: ...

    @abstractmethod
    def health(self) -> HealthReport: ...

    @abstractmethod
    def drift(self) -> DriftReport: ...

    @abstractmethod
    def performance(self) -> PerformanceReport: ...

    @abstractmethod
    def feed_demo(self) -> int: ...

    @abstractmethod
    def replay(self, start: str | None = None,
               cancel: threading.Event | None = None) -> ReplayResult: ...

    def _new_cancel(self, cancel: threading.Event | None) -> threading.Event:
        """The flag ``cancel_cycle`` sets for the retrain starting now."""
        self._cancel = cancel or threading.Event()
        return self._cancel

    def cancel_cycle(self) -> None:
        self._cancel.set()

    # ---- reading state ------------------------------------------------------------------
    def setup_problem(self) -> str | None:
        """Why no retrain can run yet (first run: nothing configured), else None."""
        s = self.settings
        if s.resolved_data_path is None:
            return "QT_CLM_DATA_PATH is not set (run `clm-tray setup` or open the demo)"
        if s.resolved_deploy_dir is None:
            return "QT_CLM_DEPLOY_DIR is not set (run `clm-tray setup` or open the demo)"
        return None

    def champion_age_hours(self) -> float | None:
        """Age of the model the backend runs: the champion's, else the deployed file's."""
        d = self.settings.resolved_deploy_dir
        return readmodels.champion_age_hours(
            self.store, self._deployed_meta(), d / self.settings.model_file if d else None,
            self.clock())

    def versions(self) -> list[VersionRow]:
        return readmodels.version_rows(self.store)

    def backups(self) -> list[BackupRow]:
        if self.settings.resolved_deploy_dir is None:
            return []
        return readmodels.backup_rows(self.deployer().backups())

    def history_rows(self, n: int = 50) -> list[CycleRecord]:
        return self.history.cycles(n)

    def accuracy_history(self) -> list[dict[str, Any]]:
        return readmodels.accuracy_history(self.history, self.store.aliases().get("champion"),
                                           self.versions())

    def aliases(self) -> dict[str, str | None]:
        return self.store.aliases()

    def champion_importance(self) -> dict[str, float]:
        cid = self.store.aliases().get("champion")
        if not cid:
            return {}
        return dict(self.store.get(cid).manifest.get("importance") or {})

    def scheduler_state(self) -> SchedulerState:
        """This process's scheduler, else what the one in another process last wrote."""
        from clm_tray.core.schedule.state import read_state

        if self._scheduler is not None:
            return self._scheduler.state()
        state = read_state(self.state_path, self.clock)
        return state or SchedulerState(running=False, enabled=self.settings.enabled,
                                       auto_retrain=self.settings.auto_retrain)

    def status(self) -> EngineStatus:
        return readmodels.engine_status(self.loaded, self.store, self.history,
                                        self.champion_age_hours(), self.scheduler_state())

    # ---- scheduler ----------------------------------------------------------------------
    def start_scheduler(self, owner: str = "tray") -> None:
        from clm_tray.core.schedule.scheduler import Scheduler

        if self._scheduler is None:
            self._scheduler = Scheduler(self, owner=owner)
        self._scheduler.start()

    def stop_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None

    @property
    def scheduler_running(self) -> bool:
        return self._scheduler is not None

    def pause(self, reason: str, until: datetime | None = None) -> None:
        """Pause checks here, or in the daemon / tray of another process (pause file)."""
        from clm_tray.core.schedule.state import write_pause

        if self._scheduler is not None:
            self._scheduler.pause(reason, until)
        else:
            write_pause(self.state_path, reason, until.timestamp() if until else None,
                        by="cli", at=self.clock())

    def resume(self) -> None:
        from clm_tray.core.schedule.state import clear_pause

        if self._scheduler is not None:
            self._scheduler.resume()
        else:
            clear_pause(self.state_path)

    def apply_settings(self, loaded: LoadedSettings) -> None:
        """New settings take effect now: the schedule is re-planned, nothing restarts."""
        self.loaded = loaded
        self.settings = loaded.settings
        startup.adopt(self._ctx())  # a newly named deploy folder's model is recorded first
        if self._scheduler is not None:
            self._scheduler.apply_settings(self.settings)

    def close(self) -> None:
        self.stop_scheduler()
        self.bus.close()
