"""The engine's event bus: every stage and check is announced here, with typed fields.

Each kind of event has a small dataclass payload below (``CycleStage``, ``CycleFinished``,
``DriftChecked`` ...). Publishers emit the payload (``bus.emit(CycleStage(...))``); subscribers
read ``event.payload`` and test its type (``isinstance(p, CycleFinished)``), so a field's name
and type are checked where it is written and where it is read.

On the wire an ``Event`` is still plain data — a kind, a level, a timestamp and ``data``, the
payload as JSON (``serialize.to_jsonable``) — so it crosses threads, the worker's pipe and
Redis unchanged, and ``event.payload`` decodes ``data`` back into the typed payload. The bus
keeps the last events in memory and calls subscribers synchronously on the publishing thread;
the GUI bridges them to Qt signals in one place. A mirror (Redis, see ``redis_mirror.py``) may
be attached; the bus never fails because a mirror did.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

from clm_tray.core.app.status import (
    DriftCheck,
    HealthReport,
    Outcome,
    PerformanceCheck,
    SchedulerState,
    ShadowResult,
)
from clm_tray.core.serialize import from_jsonable, to_jsonable

log = logging.getLogger(__name__)

# The kinds the engine publishes. Keep in sync with DESIGN.md's list and the payloads below.
CYCLE_STARTED = "cycle.started"
CYCLE_STAGE = "cycle.stage"
CYCLE_FINISHED = "cycle.finished"
MODEL_DEPLOYED = "model.deployed"
MODEL_ROLLED_BACK = "model.rolled_back"
CHALLENGER_WAITING = "challenger.waiting"
DRIFT_CHECKED = "drift.checked"
PERFORMANCE_CHECKED = "performance.checked"
BACKEND_HEALTH = "backend.health"
SCHEDULER_STATE = "scheduler.state"
RETRAIN_DUE = "retrain.due"  # auto-retrain off, or back-off holds it
BUS_WARNING = "bus.warning"  # e.g. Redis unreachable
BUS_INFO = "bus.info"  # e.g. Redis reachable again
DEMO_FED = "demo.fed"
REPLAY_PROGRESS = "replay.progress"

LEVELS = ("debug", "info", "warning", "error")


# ---- payloads -----------------------------------------------------------------------------
class Payload:
    """What one kind of event says. ``KIND`` names the kind; fields in ``OMIT_NONE`` are left
    out of ``data`` when they are None (extras only some publishers of the kind have; the
    rule is ``serialize.to_jsonable``'s, the same for every record)."""

    KIND: ClassVar[str] = ""
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    def wire(self) -> dict[str, Any]:
        """The payload as the event's ``data``: JSON-ready, ``OMIT_NONE`` Nones left out."""
        data: dict[str, Any] = to_jsonable(self)
        return data


R = TypeVar("R", bound="_FromReport")


class _FromReport(Payload):
    """A payload that is a check's report plus a few fields (flat on the wire, as in history)."""

    @classmethod
    def of(cls: type[R], report: Any, **extra: Any) -> R:
        values = {f.name: getattr(report, f.name) for f in fields(report) if f.init}
        return cls(**values, **extra)


@dataclass
class CycleStarted(Payload):
    KIND: ClassVar[str] = CYCLE_STARTED
    trigger: str = ""  # "manual", "age: model 30 h old > 24 h", "rollback", ...
    cycle: int | None = None  # the history row
    champion: str | None = None  # the version in use when it started


@dataclass
class CycleStage(Payload):
    """A step of a running cycle (or a note at start-up: stage "recover", "adopt").
    Published at level "warning" for a data warning: no new stage, the bar stays."""

    KIND: ClassVar[str] = CYCLE_STAGE
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset(
        {"cycle", "rounds_done", "rounds_total", "seconds_left", "version"})
    stage: str = ""  # load / train / version / shadow / deploy / restart / verify / record ...
    progress: float = 0.0  # 0..1
    message: str = ""
    cycle: int | None = None
    rounds_done: int | None = None  # boosting rounds, while training
    rounds_total: int | None = None
    seconds_left: float | None = None
    version: str | None = None  # the version just saved (stage "version", "adopt")


@dataclass
class CycleFinished(Payload):
    KIND: ClassVar[str] = CYCLE_FINISHED
    outcome: Outcome = Outcome.FAILED
    reason: str = ""
    version: str | None = None
    ok: bool = False
    cycle: int | None = None
    test_accuracy: float | None = None

    @property
    def failed(self) -> bool:
        return self.outcome.failed


@dataclass
class ModelDeployed(Payload):
    KIND: ClassVar[str] = MODEL_DEPLOYED
    version: str = ""
    sha256: str | None = None
    test_accuracy: float | None = None
    backup: str | None = None  # the backup folder of what it replaced
    verified: bool = False  # the backend reported this very model
    identity: str = ""  # HealthReport.identity


@dataclass
class ModelRolledBack(Payload):
    """Published at level "error" for an automatic rollback after a failed deploy."""

    KIND: ClassVar[str] = MODEL_ROLLED_BACK
    version: str = ""  # now the champion
    from_version: str | None = None
    reason: str = ""
    verified: bool = False


@dataclass
class ChallengerWaiting(Payload):
    KIND: ClassVar[str] = CHALLENGER_WAITING
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"shadow"})
    version: str = ""
    reason: str = ""
    shadow: ShadowResult | None = None  # the shadow test's result, when it waits for rows


@dataclass
class DriftChecked(DriftCheck, _FromReport):
    KIND: ClassVar[str] = DRIFT_CHECKED


@dataclass
class PerformanceChecked(PerformanceCheck, _FromReport):
    KIND: ClassVar[str] = PERFORMANCE_CHECKED


@dataclass
class BackendHealth(HealthReport, _FromReport):
    KIND: ClassVar[str] = BACKEND_HEALTH


@dataclass
class SchedulerStateChanged(Payload):
    KIND: ClassVar[str] = SCHEDULER_STATE
    state: SchedulerState = field(default_factory=SchedulerState)


@dataclass
class RetrainDue(Payload):
    KIND: ClassVar[str] = RETRAIN_DUE
    trigger: str = ""
    reason: str = ""


@dataclass
class BusWarning(Payload):
    KIND: ClassVar[str] = BUS_WARNING
    message: str = ""
    url: str = ""
    stream: str = ""


@dataclass
class BusInfo(BusWarning):
    KIND: ClassVar[str] = BUS_INFO


@dataclass
class DemoFed(Payload):
    KIND: ClassVar[str] = DEMO_FED
    rows: int = 0


@dataclass
class ReplayProgress(Payload):
    KIND: ClassVar[str] = REPLAY_PROGRESS
    progress: float = 0.0  # 0..1
    message: str = ""


PAYLOADS: dict[str, type[Payload]] = {cls.KIND: cls for cls in (
    CycleStarted, CycleStage, CycleFinished, ModelDeployed, ModelRolledBack, ChallengerWaiting,
    DriftChecked, PerformanceChecked, BackendHealth, SchedulerStateChanged, RetrainDue,
    BusWarning, BusInfo, DemoFed, ReplayProgress,
)}


# ---- the event and the bus ----------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    level: str = "info"
    ts: float = field(default_factory=time.time)

    @functools.cached_property
    def payload(self) -> Payload | None:
        """``data`` as its kind's typed payload (decoded once); None for a kind this version
        does not know or data it cannot read (an event from a newer clm-tray via Redis)."""
        cls = PAYLOADS.get(self.kind)
        if cls is None:
            return None
        try:
            return from_jsonable(cls, self.data)
        except ValueError as exc:
            log.warning("cannot read a %s event's fields: %s", self.kind,
                        " ".join(str(exc).split())[:300])
            return None


Subscriber = Callable[[Event], None]


class Mirror(Protocol):
    """Somewhere events are copied to (Redis). ``publish`` must not raise."""

    def publish(self, event: Event) -> None: ...

    def close(self) -> None: ...


class EventBus:
    """In-memory publish/subscribe with a bounded memory of recent events."""

    def __init__(self, keep: int = 1000) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.RLock()
        self._recent: deque[Event] = deque(maxlen=keep)
        self.mirror: Mirror | None = None

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subs.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subs:
                    self._subs.remove(fn)

        return unsubscribe

    def publish(self, event: Event) -> Event:
        with self._lock:
            self._recent.append(event)
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # a broken listener must not break the engine
                log.exception("event subscriber failed on %s", event.kind)
        if self.mirror is not None:
            self.mirror.publish(event)
        return event

    def emit(self, payload: Payload, level: str = "info") -> Event:
        """Publish ``payload`` as an event of its kind (secrets in its text redacted)."""
        from clm_tray.core.config.secrets import redact_obj

        return self.publish(Event(kind=payload.KIND, data=redact_obj(payload.wire()),
                                  level=level))

    def recent(self, n: int | None = None) -> list[Event]:
        with self._lock:
            items = list(self._recent)
        return items if n is None else items[-n:]

    def close(self) -> None:
        if self.mirror is not None:
            self.mirror.close()
