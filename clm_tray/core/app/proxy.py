"""``WorkerEngine``: the engine whose heavy calls run in a worker process (mode ``"worker"``).

The tray and the daemon live for days; they must stay small and their event loop smooth, so
they never import pandas, XGBoost or scikit-learn. This engine answers the cheap reads itself
(``EngineBase``) and sends each heavy call as a typed request (requests.py) to a fresh worker
process (worker.py) that runs it on an in-process ``service.Engine``, built by the ``build``
function the composition root (compose.py) hands over. Events, log lines and the typed result
come back; the call blocks like the in-process one, so run it off the GUI thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from clm_tray.core.app import events as ev
from clm_tray.core.app import requests as rq
from clm_tray.core.app.engine_base import EngineBase
from clm_tray.core.app.status import CycleResult, DriftReport, HealthReport, PerformanceReport
from clm_tray.core.app.worker import EngineBuilder, run_in_worker
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.core.errors import WorkerError

if TYPE_CHECKING:
    from clm_tray.core.ml.replay_result import ReplayResult

R = TypeVar("R")


class WorkerEngine(EngineBase):
    """One workspace's engine; each heavy call runs in its own worker process."""

    def __init__(self, loaded: LoadedSettings, build: EngineBuilder,
                 bus: ev.EventBus | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._build = build  # the worker's engine (its clock is time.time)
        super().__init__(loaded, bus=bus, clock=clock)

    def _in_worker(self, request: rq.WorkerRequest[R],
                   cancel: threading.Event | None = None) -> R:
        try:
            return run_in_worker(self.loaded, request, build=self._build, bus=self.bus,
                                 cancel=cancel)
        except WorkerError:
            self._recover()  # a worker that died mid-deploy leaves a journal / an open row
            raise

    def retrain(self, trigger: str = "manual", deploy: bool = True,
                cancel: threading.Event | None = None, force: bool = False) -> CycleResult:
        return self._in_worker(rq.Retrain(trigger, deploy=deploy, force=force),
                               self._new_cancel(cancel))

    def rollback(self, version_id: str | None = None) -> CycleResult:
        return self._in_worker(rq.Rollback(version_id))

    def promote(self, version_id: str | None = None) -> CycleResult:
        return self._in_worker(rq.Promote(version_id))

    def restart_backend(self) -> HealthReport:
        return self._in_worker(rq.RestartBackend())

    def health(self) -> HealthReport:
        return self._in_worker(rq.Health())

    def drift(self) -> DriftReport:
        return self._in_worker(rq.Drift())

    def performance(self) -> PerformanceReport:
        return self._in_worker(rq.Performance())

    def feed_demo(self) -> int:
        return int(self._in_worker(rq.FeedDemo()))

    def replay(self, start: str | None = None,
               cancel: threading.Event | None = None) -> ReplayResult:
        return self._in_worker(rq.Replay(start), cancel)
