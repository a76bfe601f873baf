"""The engine, the last known state and the running cycle, shared by the tray and dashboard.

The controller opens the engine (off the GUI thread, the way this app opens every engine:
heavy work in worker processes), starts its scheduler, turns its events into signals (the
progress of a running cycle, its start and end) and keeps one ``Snapshot`` (snapshot.py) of
plain engine data, re-read after events (coalesced) and once a minute. The user's actions
(actions.py) are one engine call each on the task runner; results and errors come back as
signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from clm_tray.core.app import events as ev
from clm_tray.core.app import wording
from clm_tray.core.app.port import EnginePort, Mode
from clm_tray.core.app.status import Health
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.gui.actions import UserActions, ask_yes_no
from clm_tray.gui.bridge import EngineBridge
from clm_tray.gui.notifier import Notifier
from clm_tray.gui.snapshot import Snapshot, take_snapshot
from clm_tray.gui.taskrunner import Op, TaskRunner, describe_error

log = logging.getLogger(__name__)

REFRESH_EVERY_MS = 60_000
COALESCE_MS = 250


class Controller(QObject, UserActions):
    snapshot_changed = Signal(object)  # Snapshot
    health_changed = Signal(object)  # Health the icon shows
    progress = Signal(str, float, str)  # stage, 0..1, message (while a cycle runs)
    running_changed = Signal(bool)  # a cycle started / ended
    error = Signal(str)  # the one place errors are shown
    info = Signal(str)  # a short success line for the status bar
    show_dashboard = Signal(str)  # open (or raise) the dashboard at this view
    engine_ready = Signal()
    show_path = Signal(str, str)  # title, a path nothing could open: shown to copy

    def __init__(self, loaded: LoadedSettings, *, runner: TaskRunner, notifier: Notifier,
                 demo_backend: Any = None, engine_mode: Mode = "worker",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loaded = loaded
        # Heavy calls run in a worker process: this one never imports pandas / xgboost, so
        # the event loop is not starved by them and idle memory stays small. Every engine
        # this controller opens (at start, after a project switch) is opened this way.
        self.engine_mode: Mode = engine_mode
        self.runner = runner
        self.notifier = notifier
        self.demo_backend = demo_backend
        self.engine: EnginePort | None = None
        self.snapshot: Snapshot | None = None
        self.cycle_running = False
        self.stage = ("", 0.0, "")
        self.seconds_left: float | None = None
        self.work = ""  # the running cycle's trigger: "manual", "rollback", "promote", …
        self.start_error = ""
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask_yes_no(
            QApplication.activeWindow(), title, text)
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl  # tests replace it
        self._quitting = False
        self._refresh_again = False
        self.bridge = EngineBridge(self)
        self.bridge.changed.connect(self._on_changed)
        self.bridge.cycle_started.connect(self._on_cycle_started)
        self.bridge.cycle_stage.connect(self._on_stage)
        self.bridge.cycle_finished.connect(self._on_cycle_finished)
        self.bridge.event.connect(notifier.on_event)
        self.runner.failed.connect(self._on_action_failed)
        self._coalesce = QTimer(self, singleShot=True, interval=COALESCE_MS)
        self._coalesce.timeout.connect(self.refresh)
        self._periodic = QTimer(self, interval=REFRESH_EVERY_MS)
        self._periodic.timeout.connect(self.refresh)

    # ---- start / stop -------------------------------------------------------------------
    def open_engine(self, loaded: LoadedSettings) -> EnginePort:
        """Open an engine for ``loaded`` the way this app runs engines (blocking: it recovers
        and adopts first; call it from the task runner)."""
        from clm_tray.core.app.compose import open_engine

        return open_engine(loaded, self.engine_mode)

    def start(self, *, scheduler: bool = True, first_cycle: bool = False,
              engine: EnginePort | None = None) -> None:
        """Build the engine off the GUI thread, then start the scheduler and read state."""

        def make() -> EnginePort:
            return engine if engine is not None else self.open_engine(self.loaded)

        def ready(made: EnginePort) -> None:
            self.set_engine(made)

            def start_scheduler() -> None:
                if scheduler:
                    Op(made.start_scheduler, key="scheduler", label="Start the scheduler") \
                        .success(lambda _r: self.refresh()).run(self.runner)

            if first_cycle and made.aliases().get("champion") is None:
                # The demo's first cycle runs before the scheduler starts, so its age check
                # does not race the cycle (and report "busy") on the very first screen.
                Op(lambda: made.retrain(trigger="first run"), key="retrain",
                   label="Retrain now").success(self._cycle_done("Retrain")) \
                    .then(start_scheduler).run(self.runner)
            else:
                start_scheduler()

        def failed(exc: BaseException) -> None:
            self.start_error = describe_error(exc)
            self.error.emit(f"The engine did not start: {self.start_error}")
            self.health_changed.emit(Health.ERROR)

        Op(make, key="engine", label="Start the engine").success(ready).failure(failed) \
            .run(self.runner)

    def set_engine(self, engine: EnginePort) -> None:
        self.engine = engine
        self.bridge.attach(engine.bus)
        self._periodic.start()
        self.engine_ready.emit()
        self.refresh()

    def quit(self, *, quit_app: bool = True) -> None:
        """Stop the scheduler (cancelling a running cycle), the demo backend, then Qt."""
        if self._quitting:
            return
        self._quitting = True
        self._periodic.stop()
        self._coalesce.stop()
        self.bridge.detach()
        if self.engine is not None:
            try:
                if self.cycle_running:
                    self.engine.cancel_cycle()
                self.engine.stop_scheduler()
            except Exception:
                log.exception("stopping the scheduler failed")
        self.runner.wait(15_000)
        if self.demo_backend is not None:
            try:
                self.demo_backend.stop()
            except Exception:
                log.exception("stopping the demo backend failed")
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:
                log.exception("closing the engine failed")
        self.notifier.close()
        app = QApplication.instance()
        if app is not None and quit_app:
            app.quit()

    # ---- state --------------------------------------------------------------------------
    @property
    def health(self) -> Health:
        if self.cycle_running:
            return Health.WORKING
        if self.snapshot is None:
            return Health.ERROR if self.start_error else Health.WORKING
        return self.snapshot.status.health

    def schedule_refresh(self) -> None:
        if not self._quitting:
            self._coalesce.start()

    def refresh(self) -> None:
        if self.engine is None or self._quitting:
            return
        if self.runner.is_busy("refresh"):
            self._refresh_again = True
            return
        engine = self.engine
        Op(lambda: take_snapshot(engine), key="refresh", label="Refresh") \
            .success(self._on_snapshot).failure(self._on_refresh_failed).run(self.runner)

    def stage_text(self) -> str:
        """The running cycle in one line; the header, strip, tooltip and menu all show it."""
        stage, progress, message = self.stage
        return wording.stage_line(self.work, stage, progress, message, self.seconds_left)

    def _on_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        stage = snap.status.scheduler.cycle_stage
        if stage and not self.cycle_running and not self.runner.is_busy("retrain"):
            # a cycle started elsewhere (the scheduler before we subscribed, the CLI)
            self.stage = (stage, snap.status.scheduler.cycle_progress, "")
            self.seconds_left = None
        self.snapshot_changed.emit(snap)
        self.health_changed.emit(self.health)
        if self._refresh_again:
            self._refresh_again = False
            self.schedule_refresh()

    def _on_refresh_failed(self, exc: BaseException) -> None:
        log.warning("refresh failed: %s", describe_error(exc))
        self.error.emit(f"Cannot read the engine's state: {describe_error(exc)}")

    def _on_changed(self, _kind: str) -> None:
        self.schedule_refresh()

    def _on_cycle_started(self, event: ev.Event) -> None:
        p = event.payload
        self.cycle_running = True
        self.work = p.trigger if isinstance(p, ev.CycleStarted) else ""
        self.stage = ("starting", 0.0, "")
        self.seconds_left = None
        self.running_changed.emit(True)
        self.progress.emit("starting", 0.0, "")
        self.health_changed.emit(self.health)

    def _on_stage(self, event: ev.Event) -> None:
        p = event.payload
        if not isinstance(p, ev.CycleStage):
            return
        stage, message, progress = p.stage, p.message, p.progress
        if stage == "recover" and not self.cycle_running:
            return
        if event.level == "warning":  # a data warning: no new stage, the bar stays
            stage, progress = self.stage[0] or stage, self.stage[1]
        self.seconds_left = p.seconds_left
        self.stage = (stage, progress, message)
        self.progress.emit(stage, progress, message)
        self.health_changed.emit(self.health)

    def _on_cycle_finished(self, _event: ev.Event) -> None:
        self.cycle_running = False
        self.stage = ("", 0.0, "")
        self.seconds_left = None
        self.running_changed.emit(False)
        self.health_changed.emit(self.health)

    def _on_action_failed(self, label: str, message: str) -> None:
        self.error.emit(f"{label} failed: {message}")
        self.notifier.action_failed(label, message)
