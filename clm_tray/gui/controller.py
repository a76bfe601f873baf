"""The user's actions and the last known state, shared by the tray and the dashboard.

Every action is one engine call submitted to the task runner (never on the GUI thread);
results and errors come back as signals. The state shown everywhere is one ``Snapshot`` of
plain engine data, re-read after events (coalesced) and once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from clm_tray.core.app import events as ev
from clm_tray.core.app import wording
from clm_tray.core.app.status import (
    BackupRow,
    CycleRecord,
    CycleResult,
    EngineStatus,
    Health,
    Outcome,
    VersionRow,
)
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.gui.bridge import EngineBridge
from clm_tray.gui.notifier import Notifier
from clm_tray.gui.taskrunner import Op, TaskRunner, describe_error

log = logging.getLogger(__name__)

LOG_NAME = "retraining_log.txt"
REFRESH_EVERY_MS = 60_000
COALESCE_MS = 250


@dataclass
class Snapshot:
    """Everything the tray and the dashboard show, read in one go off the GUI thread."""

    status: EngineStatus
    versions: list[VersionRow] = field(default_factory=list)
    backups: list[BackupRow] = field(default_factory=list)
    history: list[CycleRecord] = field(default_factory=list)
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    log_tail: str = ""
    importance: dict[str, float] = field(default_factory=dict)  # the champion's, by gain
    taken_at: float = 0.0

    @cached_property
    def facts(self) -> wording.Facts:
        """The figures shown in more than one place, as text, made once for this snapshot:
        every card, tab, tooltip and menu line reads them here (one truth on screen)."""
        return wording.facts(self.status)


def tail_text(path: Path | None, lines: int = 200, max_bytes: int = 256_000) -> str:
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def take_snapshot(engine: Any, history_n: int = 50, log_lines: int = 200) -> Snapshot:
    """Read the engine's state (blocking: call it from the task runner)."""
    deploy_dir = engine.settings.resolved_deploy_dir
    status = engine.status()
    importance: dict[str, float] = {}
    if status.champion is not None:
        importance = dict(engine.store.get(status.champion.id).manifest.get("importance") or {})
    return Snapshot(
        status=status,
        importance=importance,
        versions=engine.versions(),
        backups=engine.backups(),
        history=engine.history_rows(history_n),
        accuracy=engine.accuracy_history(),
        log_tail=tail_text(deploy_dir / LOG_NAME if deploy_dir else None, log_lines),
        taken_at=time.time(),
    )


def verified_text(health: dict[str, Any] | None) -> str:
    if not health:
        return "backend not checked"
    if health.get("skipped"):
        return "backend not checked (files only)"
    return "backend verified" if health.get("ok") else "backend NOT verified"


def done_line(what: str, result: CycleResult) -> str:
    """'Rolled back to v0003 — backend verified': what happened, then how we know."""
    if what == "Rollback":
        return f"Rolled back to {result.version} — {verified_text(result.health)}"
    if what == "Promote":
        return f"Promoted {result.version} — {verified_text(result.health)}"
    if result.outcome == Outcome.DEPLOYED:
        return f"New model {result.version} in use — {verified_text(result.health)}"
    return f"{what}: {result.outcome} — {result.reason}"


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    """The confirmation box (tests answer it like a user, through its buttons)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setObjectName("confirm")
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box.exec() == QMessageBox.StandardButton.Yes


class Controller(QObject):
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
                 demo_backend: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loaded = loaded
        self.runner = runner
        self.notifier = notifier
        self.demo_backend = demo_backend
        self.engine: Any = None
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
    def start(self, *, scheduler: bool = True, first_cycle: bool = False,
              engine: Any = None) -> None:
        """Build the engine off the GUI thread, then start the scheduler and read state."""

        def make() -> Any:
            if engine is not None:
                return engine
            from clm_tray.core.app.service import Engine

            # Heavy calls run in a worker process: this one never imports pandas / xgboost,
            # so the event loop is not starved by them and idle memory stays small.
            return Engine(self.loaded, isolate=True)

        def ready(made: Any) -> None:
            self.set_engine(made)

            def start_scheduler() -> None:
                if scheduler:
                    Op(made.start_scheduler, key="scheduler", label="Start the scheduler") \
                        .success(lambda _r: self.refresh()).run(self.runner)

            if first_cycle and made.store.aliases().get("champion") is None:
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

    def set_engine(self, engine: Any) -> None:
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

    # ---- actions ------------------------------------------------------------------------
    def _need_engine(self) -> bool:
        if self.engine is None:
            self.error.emit(self.start_error and f"The engine did not start: {self.start_error}"
                            or "The engine is still starting; try again in a moment.")
            return False
        return True

    def _cycle_done(self, what: str) -> Callable[[CycleResult], None]:
        """Every action ends with a visible line; rollback and promote also notify."""

        def done(result: CycleResult) -> None:
            if result.ok or not Outcome.is_failure(result.outcome):  # cancelled: no alarm
                line = done_line(what, result)
                self.info.emit(line)
                if what == "Rollback" and result.ok:  # a promote is announced by its deploy
                    self.notifier.action_done(line.split(" — ")[0],
                                              line.partition(" — ")[2], "versions")
            else:
                self.error.emit(f"{what} {result.outcome}: {result.reason}")
            self.refresh()

        return done

    def retrain(self, trigger: str = "manual") -> bool:
        if not self._need_engine():
            return False
        engine = self.engine
        return Op(lambda: engine.retrain(trigger=trigger), key="retrain", label="Retrain now") \
            .success(self._cycle_done("Retrain")).run(self.runner)

    def cancel(self) -> bool:
        if self.engine is None:
            return False
        return Op(self.engine.cancel_cycle, key="cancel", label="Cancel").run(self.runner)

    def rollback(self, version_id: str | None = None, *, ask: bool = True) -> bool:
        """Roll back (asks first unless the user already chose it, e.g. on a notification)."""
        if not self._need_engine():
            return False
        target = version_id or "the previous model"
        if ask and not self.confirm("Roll back?",
                            f"Install {target} into the deploy folder and restart the backend?"):
            return False
        engine = self.engine
        return Op(lambda: engine.rollback(version_id), key="rollback", label="Roll back") \
            .success(self._cycle_done("Rollback")).run(self.runner)

    def promote(self, version_id: str | None = None) -> bool:
        if not self._need_engine():
            return False
        rows = self.snapshot.versions if self.snapshot is not None else []
        gated = next((v for v in rows if v.id == version_id and v.status == "no edge"), None)
        if gated is not None and not self.confirm(
                "Deploy a model without an edge?",
                f"{gated.id} did not beat guessing on its out-of-time test, so clm-tray kept "
                "the current model. Deploy it anyway?"):
            return False
        engine = self.engine
        return Op(lambda: engine.promote(version_id), key="promote", label="Promote") \
            .success(self._cycle_done("Promote")).run(self.runner)

    def restart_backend(self, *, ask: bool = True) -> bool:
        if not self._need_engine():
            return False
        if ask and not self.confirm("Restart the backend?",
                            "Restart the prediction backend now? It stops answering for a "
                            "few seconds."):
            return False

        def done(report: Any) -> None:
            if getattr(report, "skipped", False):
                self.info.emit("Nothing to restart: no backend is set up (files only)")
            elif report.ok:
                lat = report.latency_ms
                body = "healthy" + (f", answers in {wording.latency(lat)}"
                                    if lat is not None else "")
                self.info.emit(f"Backend restarted — {body}")
                self.notifier.action_done("Backend restarted", body, "overview")
            else:
                self.error.emit(f"Backend restarted but unhealthy: {report.reason}")
            self.refresh()

        return Op(self.engine.restart_backend, key="restart", label="Restart backend") \
            .success(done).run(self.runner)

    def pause(self, hours: float | None = None, reason: str = "paused by you") -> bool:
        if not self._need_engine():
            return False
        until = datetime.now() + timedelta(hours=hours) if hours else None
        engine = self.engine
        return Op(lambda: engine.pause(reason, until), key="pause", label="Pause checks") \
            .success(lambda _r: self.refresh()).run(self.runner)

    def resume(self) -> bool:
        if not self._need_engine():
            return False
        return Op(self.engine.resume, key="pause", label="Resume checks") \
            .success(lambda _r: self.refresh()).run(self.runner)

    def apply_settings(self, loaded: LoadedSettings) -> None:
        """New settings: the notifier now, the engine's schedule via the runner."""
        self.loaded = loaded
        s = loaded.settings
        self.notifier.rules.configure(s.notify_success, s.notify_throttle_minutes)
        if self.engine is None:
            return
        engine = self.engine
        Op(lambda: engine.apply_settings(loaded), key="settings", label="Apply settings") \
            .success(lambda _r: (self.info.emit("Settings saved and applied"), self.refresh())) \
            .run(self.runner)

    def run_notification_action(self, key: str, _view: str = "") -> bool:
        """A button on a notification was clicked: the user chose this, so no second ask."""
        if key == "restart":
            return self.restart_backend(ask=False)
        if key == "rollback":
            return self.rollback(None, ask=False)
        log.warning("unknown notification action %r", key)
        return False

    def open_logs(self) -> bool:
        """Open the logs folder in the file manager; when nothing can open it, say where it
        is (selectable, so it can be copied) instead of silently doing nothing."""
        folder = self.loaded.settings.resolved_log_dir
        folder.mkdir(parents=True, exist_ok=True)
        if self.open_url(QUrl.fromLocalFile(str(folder))):
            return True
        self.info.emit(f"Logs are in {folder}")
        self.show_path.emit("Logs folder", str(folder))
        return False
