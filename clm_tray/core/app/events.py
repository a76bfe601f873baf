"""The engine's event bus: every stage and check is announced here.

Events are plain data (a kind, a timestamp, a level and a dict of fields) so they cross
threads, processes and Redis unchanged. The bus keeps the last events in memory and calls
subscribers synchronously on the publishing thread; the GUI bridges them to Qt signals in one
place. A mirror (Redis, see ``redis_mirror.py``) may be attached; the bus never fails because a
mirror did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# The kinds the engine publishes. Keep in sync with DESIGN.md's list.
CYCLE_STARTED = "cycle.started"
CYCLE_STAGE = "cycle.stage"  # stage, progress (0..1), message
CYCLE_FINISHED = "cycle.finished"  # outcome, reason, version, metrics
MODEL_DEPLOYED = "model.deployed"  # version, sha256, test_accuracy
MODEL_ROLLED_BACK = "model.rolled_back"  # version (now champion), from_version, reason
CHALLENGER_WAITING = "challenger.waiting"  # version, reason
DRIFT_CHECKED = "drift.checked"  # score, threshold, drifted
PERFORMANCE_CHECKED = "performance.checked"  # accuracy, test_accuracy, degraded
BACKEND_HEALTH = "backend.health"  # ok, reason, latency_ms, reported_sha256
SCHEDULER_STATE = "scheduler.state"  # state dict
RETRAIN_DUE = "retrain.due"  # trigger, reason (auto-retrain off, or back-off holds it)
BUS_WARNING = "bus.warning"  # message (e.g. Redis unreachable)
DEMO_FED = "demo.fed"  # rows appended
REPLAY_PROGRESS = "replay.progress"  # progress (0..1), message

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    level: str = "info"
    ts: float = field(default_factory=time.time)


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

    def emit(self, kind: str, level: str = "info", **data: Any) -> Event:
        from clm_tray.core.config.secrets import redact_obj

        return self.publish(Event(kind=kind, data=redact_obj(data), level=level))

    def recent(self, n: int | None = None) -> list[Event]:
        with self._lock:
            items = list(self._recent)
        return items if n is None else items[-n:]

    def close(self) -> None:
        if self.mirror is not None:
            self.mirror.close()
