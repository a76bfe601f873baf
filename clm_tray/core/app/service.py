"""``Engine``: the in-process engine (mode ``"inline"`` of ``compose.open_engine``).

Every heavy call runs right here: the retrain cycle (cycle.py), the manual actions
(actions.py), the checks and the replay (monitoring.py). The CLI's one-shot commands use it,
and so does each worker process of ``proxy.WorkerEngine`` (the tray and the daemon), so the
same code answers in both modes. What the two modes share (opening the workspace, the reads,
the scheduler) is ``engine_base.EngineBase``.

A process that makes one of these calls imports pandas and XGBoost; building an Engine does
not (this module and what it imports at the top import them only inside the functions that
need them), so the worker proxy can share the base without paying for them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from clm_tray.core.app import actions, monitoring
from clm_tray.core.app.cycle import retrain_cycle
from clm_tray.core.app.engine_base import EngineBase
from clm_tray.core.app.status import CycleResult, DriftReport, HealthReport, PerformanceReport

if TYPE_CHECKING:
    from clm_tray.core.ml.data import Dataset
    from clm_tray.core.ml.replay_result import ReplayResult


class Engine(EngineBase):
    """One workspace's engine whose heavy calls run in this process."""

    def retrain(self, trigger: str = "manual", deploy: bool = True,
                cancel: threading.Event | None = None, force: bool = False) -> CycleResult:
        """One retrain cycle; ``force`` trains even when nothing changed since the newest
        version (README "How clm-tray decides")."""
        return retrain_cycle(self._ctx(), trigger, deploy=deploy,
                             cancel=self._new_cancel(cancel), force=force)

    def rollback(self, version_id: str | None = None) -> CycleResult:
        return actions.rollback(self._ctx(), version_id)

    def promote(self, version_id: str | None = None) -> CycleResult:
        """Deploy a challenger (or any stored version) the user approved, verified."""
        return actions.promote(self._ctx(), version_id)

    def restart_backend(self) -> HealthReport:
        """Restart the backend and verify it reports the model in the deploy folder."""
        return actions.restart_backend(self._ctx())

    def health(self) -> HealthReport:
        """One probe of the health URL, judged against the model in the deploy folder."""
        return actions.health(self._ctx())

    def drift(self) -> DriftReport:
        return monitoring.drift(self._ctx())

    def performance(self) -> PerformanceReport:
        """Live accuracy of the champion on new rows; re-tests a waiting challenger too."""
        return monitoring.performance(self._ctx())

    def feed_demo(self) -> int:
        """Demo only: append the next hourly bar for every symbol (the data keeps growing)."""
        return monitoring.feed_demo(self._ctx())

    def replay(self, start: str | None = None,
               cancel: threading.Event | None = None) -> ReplayResult:
        """Would the configured policy have paid on this data? (read-only; see replay.py)"""
        return monitoring.replay(self._ctx(), start, cancel)

    def load_data(self) -> Dataset:
        """The training data as the checks load it (tests compare it with the cycle's)."""
        return monitoring.load_data(self._ctx())
