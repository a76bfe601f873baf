"""The user's actions: each is one engine call on the task runner, ending in a visible line.

Retrain, cancel, roll back, promote, restart the backend, pause and resume, apply settings,
a notification's button, opening the logs folder. A rollback, a restart or a promote of a
model without an edge asks first (``confirm``; the user already chose when they clicked a
notification's button). Results and errors come back as the controller's ``info`` / ``error``
signals, so they are shown in one place. ``UserActions`` is the part of ``Controller``
(controller.py) that does this; the controller owns the engine, the runner and the state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QMessageBox, QWidget

from clm_tray.core.app import wording
from clm_tray.core.app.port import EnginePort
from clm_tray.core.app.status import CycleResult, HealthReport, Outcome
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.gui.taskrunner import Op, TaskRunner

if TYPE_CHECKING:
    from clm_tray.gui.notifier import Notifier
    from clm_tray.gui.snapshot import Snapshot

log = logging.getLogger(__name__)


def verified_text(health: HealthReport | None) -> str:
    if health is None:
        return "backend not checked"
    if health.skipped:
        return "backend not checked (files only)"
    return "backend verified" if health.ok else "backend NOT verified"


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


class UserActions:
    """The actions of ``Controller`` (which provides the attributes declared here)."""

    engine: EnginePort | None
    runner: TaskRunner
    notifier: Notifier
    snapshot: Snapshot | None
    loaded: LoadedSettings
    start_error: str
    confirm: Callable[[str, str], bool]
    open_url: Callable[[QUrl], bool]
    error: Any  # Signal(str)
    info: Any  # Signal(str)
    show_path: Any  # Signal(str, str)

    def refresh(self) -> None: ...

    def _ready_engine(self) -> EnginePort | None:
        """The engine, or None after saying why there is none yet."""
        if self.engine is None:
            self.error.emit(self.start_error and f"The engine did not start: {self.start_error}"
                            or "The engine is still starting; try again in a moment.")
        return self.engine

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
        engine = self._ready_engine()
        if engine is None:
            return False
        return Op(lambda: engine.retrain(trigger=trigger), key="retrain", label="Retrain now") \
            .success(self._cycle_done("Retrain")).run(self.runner)

    def cancel(self) -> bool:
        if self.engine is None:
            return False
        return Op(self.engine.cancel_cycle, key="cancel", label="Cancel").run(self.runner)

    def rollback(self, version_id: str | None = None, *, ask: bool = True) -> bool:
        """Roll back (asks first unless the user already chose it, e.g. on a notification)."""
        engine = self._ready_engine()
        if engine is None:
            return False
        target = version_id or "the previous model"
        if ask and not self.confirm("Roll back?",
                            f"Install {target} into the deploy folder and restart the backend?"):
            return False
        return Op(lambda: engine.rollback(version_id), key="rollback", label="Roll back") \
            .success(self._cycle_done("Rollback")).run(self.runner)

    def promote(self, version_id: str | None = None) -> bool:
        engine = self._ready_engine()
        if engine is None:
            return False
        rows = self.snapshot.versions if self.snapshot is not None else []
        gated = next((v for v in rows if v.id == version_id and v.status == "no edge"), None)
        if gated is not None and not self.confirm(
                "Deploy a model without an edge?",
                f"{gated.id} did not beat guessing on its out-of-time test, so clm-tray kept "
                "the current model. Deploy it anyway?"):
            return False
        return Op(lambda: engine.promote(version_id), key="promote", label="Promote") \
            .success(self._cycle_done("Promote")).run(self.runner)

    def restart_backend(self, *, ask: bool = True) -> bool:
        engine = self._ready_engine()
        if engine is None:
            return False
        if ask and not self.confirm("Restart the backend?",
                            "Restart the prediction backend now? It stops answering for a "
                            "few seconds."):
            return False

        def done(report: HealthReport) -> None:
            if report.skipped:
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

        return Op(engine.restart_backend, key="restart", label="Restart backend") \
            .success(done).run(self.runner)

    def pause(self, hours: float | None = None, reason: str = "paused by you") -> bool:
        engine = self._ready_engine()
        if engine is None:
            return False
        until = datetime.now() + timedelta(hours=hours) if hours else None
        return Op(lambda: engine.pause(reason, until), key="pause", label="Pause checks") \
            .success(lambda _r: self.refresh()).run(self.runner)

    def resume(self) -> bool:
        engine = self._ready_engine()
        if engine is None:
            return False
        return Op(engine.resume, key="pause", label="Resume checks") \
            .success(lambda _r: self.refresh()).run(self.runner)

    def apply_settings(self, loaded: LoadedSettings) -> None:
        """New settings: the notifier now, the engine's schedule via the runner."""
        self.loaded = loaded
        s = loaded.settings
        self.notifier.rules.configure(s.notify_success, s.notify_throttle_minutes)
        if self.engine is None:
            return
        engine = self.engine

        def applied(_result: None) -> None:
            self.info.emit("Settings saved and applied")
            self.refresh()

        Op(lambda: engine.apply_settings(loaded), key="settings", label="Apply settings") \
            .success(applied).run(self.runner)

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
