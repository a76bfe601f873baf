"""Engine events → Qt signals, in one place.

The engine calls subscribers on whatever thread published (a scheduler thread, a task-runner
thread). Emitting a Qt signal from there is safe: the receivers live on the GUI thread, so Qt
queues the call and the slot runs on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from clm_tray.core.app import events as ev


class EngineBridge(QObject):
    event = Signal(object)  # every Event
    cycle_started = Signal(object)
    cycle_stage = Signal(object)  # the cycle.stage Event (stage, progress 0..1, message, …)
    cycle_finished = Signal(object)
    changed = Signal(str)  # kind of an event that changes what the dashboard shows
    _dispatch_signal = Signal(object)  # internal hop from the engine's thread to the GUI's

    # Events after which the shown state is stale (stage events only move the progress bar).
    REFRESHING = {
        ev.CYCLE_STARTED, ev.CYCLE_FINISHED, ev.MODEL_DEPLOYED, ev.MODEL_ROLLED_BACK,
        ev.CHALLENGER_WAITING, ev.DRIFT_CHECKED, ev.PERFORMANCE_CHECKED, ev.BACKEND_HEALTH,
        ev.SCHEDULER_STATE, ev.DEMO_FED,
    }

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe: Callable[[], None] | None = None
        self._dispatch_signal.connect(self._dispatch)

    def attach(self, bus: ev.EventBus) -> None:
        self.detach()
        self._unsubscribe = bus.subscribe(self._on_engine_thread)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_engine_thread(self, event: ev.Event) -> None:
        self._dispatch_signal.emit(event)  # queued to the GUI thread when called elsewhere

    def _dispatch(self, event: ev.Event) -> None:  # on the GUI thread
        self.event.emit(event)
        if event.kind == ev.CYCLE_STARTED:
            self.cycle_started.emit(event)
        elif event.kind == ev.CYCLE_STAGE:
            self.cycle_stage.emit(event)
        elif event.kind == ev.CYCLE_FINISHED:
            self.cycle_finished.emit(event)
        if event.kind in self.REFRESHING:
            self.changed.emit(event.kind)
