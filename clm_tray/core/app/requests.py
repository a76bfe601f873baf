"""The heavy engine calls as typed requests: what the worker proxy sends to a worker process.

``proxy.WorkerEngine`` turns each heavy ``EnginePort`` call into one of these small frozen
dataclasses; the worker process (worker.py) builds its own in-process engine and calls
``request.run(engine, cancel)``, which is an ordinary method call. So a reader, and a type
checker, can follow a retrain from the tray to the cycle without a method name in a string:
``WorkerEngine.retrain`` → ``Retrain(...)`` → ``worker.run_in_worker`` → ``Retrain.run`` →
``service.Engine.retrain`` → ``cycle.retrain_cycle``. Each request's return type is the call's.

Requests travel to the worker pickled, so they hold only plain values; ``name`` names the
worker process (``clm-tray-retrain``) and the call in error messages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    from clm_tray.core.app.port import EnginePort
    from clm_tray.core.app.status import (
        CycleResult,
        DriftReport,
        HealthReport,
        PerformanceReport,
    )
    from clm_tray.core.ml.replay_result import ReplayResult

R_co = TypeVar("R_co", covariant=True)


class WorkerRequest(Protocol[R_co]):
    """One heavy call, made in the worker on its in-process engine."""

    name: ClassVar[str]

    def run(self, engine: EnginePort, cancel: threading.Event) -> R_co:
        """Make the call; ``cancel`` is set when the caller cancels (or dies)."""
        ...


@dataclass(frozen=True)
class Retrain:
    name: ClassVar[str] = "retrain"
    trigger: str = "manual"
    deploy: bool = True
    force: bool = False

    def run(self, engine: EnginePort, cancel: threading.Event) -> CycleResult:
        return engine.retrain(self.trigger, deploy=self.deploy, cancel=cancel, force=self.force)


@dataclass(frozen=True)
class Rollback:
    name: ClassVar[str] = "rollback"
    version_id: str | None = None

    def run(self, engine: EnginePort, cancel: threading.Event) -> CycleResult:
        return engine.rollback(self.version_id)


@dataclass(frozen=True)
class Promote:
    name: ClassVar[str] = "promote"
    version_id: str | None = None

    def run(self, engine: EnginePort, cancel: threading.Event) -> CycleResult:
        return engine.promote(self.version_id)


@dataclass(frozen=True)
class RestartBackend:
    name: ClassVar[str] = "restart_backend"

    def run(self, engine: EnginePort, cancel: threading.Event) -> HealthReport:
        return engine.restart_backend()


@dataclass(frozen=True)
class Health:
    name: ClassVar[str] = "health"

    def run(self, engine: EnginePort, cancel: threading.Event) -> HealthReport:
        return engine.health()


@dataclass(frozen=True)
class Drift:
    name: ClassVar[str] = "drift"

    def run(self, engine: EnginePort, cancel: threading.Event) -> DriftReport:
        return engine.drift()


@dataclass(frozen=True)
class Performance:
    name: ClassVar[str] = "performance"

    def run(self, engine: EnginePort, cancel: threading.Event) -> PerformanceReport:
        return engine.performance()


@dataclass(frozen=True)
class FeedDemo:
    name: ClassVar[str] = "feed_demo"

    def run(self, engine: EnginePort, cancel: threading.Event) -> int:
        return engine.feed_demo()


@dataclass(frozen=True)
class Replay:
    name: ClassVar[str] = "replay"
    start: str | None = None

    def run(self, engine: EnginePort, cancel: threading.Event) -> ReplayResult:
        return engine.replay(self.start, cancel=cancel)
