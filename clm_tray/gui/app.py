"""The tray application: QApplication set-up, one instance per user, the wiring of the parts.

``run_gui`` is what `clm-tray` / `clm-tray gui` / `clm-tray demo` call. The tray icon appears
before the engine is built (that happens on the task runner), so a cold start shows the icon
quickly; QtCharts loads only when the dashboard first opens.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from clm_tray.core.app.notify_rules import NoticeRules
from clm_tray.core.app.port import EnginePort
from clm_tray.core.config.sources import LoadedSettings
from clm_tray.gui.controller import Controller
from clm_tray.gui.icons import app_icon, resource_path
from clm_tray.gui.notifier import Notifier
from clm_tray.gui.single_instance import SingleInstance
from clm_tray.gui.snapshot import take_snapshot
from clm_tray.gui.taskrunner import TaskRunner
from clm_tray.gui.tray import Tray

log = logging.getLogger(__name__)

NO_TRAY_NOTE = ("No system tray was found, so this window is the app. Closing it asks whether "
                "to quit or keep checking in the background; run clm-tray again to bring this "
                "window back.")
READY_ENV = "CLM_TRAY_REPORT_READY"  # bench: print a line when the tray icon is shown


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("clm-tray")
    app.setApplicationDisplayName("clm-tray")
    app.setDesktopFileName("clm-tray")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    return app


class TrayApp(QObject):
    """Owns the runner, notifier, controller, tray icon and (lazily) the dashboard."""

    def __init__(self, loaded: LoadedSettings, *, demo_backend: Any = None,
                 instance: SingleInstance | None = None, tray_available: bool | None = None,
                 notify_channel: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        s = loaded.settings
        self.runner = TaskRunner(self)
        self.notifier = Notifier(NoticeRules(s.notify_success, s.notify_throttle_minutes),
                                 channel=notify_channel,
                                 icon_path=str(resource_path("clm-tray.png")), parent=self)
        self.controller = Controller(loaded, runner=self.runner, notifier=self.notifier,
                                     demo_backend=demo_backend, parent=self)
        self.dashboard: Any = None
        self.settings_dialog: Any = None
        self.instance = instance
        self.said_no_tray = False
        self.has_tray = (QSystemTrayIcon.isSystemTrayAvailable() if tray_available is None
                         else tray_available)
        self.tray: Tray | None = None
        if self.has_tray:
            self.tray = Tray(self.controller, open_dashboard=self.open_dashboard,
                             open_settings=self.open_settings, quit_app=self.quit, parent=self)
            self.notifier.set_tray(self.tray.icon)
        self.notifier.clicked.connect(self.open_dashboard)
        self.notifier.action.connect(self.controller.run_notification_action)
        self.controller.show_path.connect(self.show_path)
        self.controller.show_dashboard.connect(self.open_dashboard)
        if instance is not None:
            instance.message.connect(self._on_instance_message)
        self.ask_quit = self._ask_quit  # tests replace it
        self.path_box: QMessageBox | None = None

    def start(self, *, scheduler: bool = True, first_cycle: bool = False,
              engine: EnginePort | None = None) -> None:
        if self.tray is not None:
            self.tray.show()
            if os.environ.get(READY_ENV):
                QTimer.singleShot(0, self._report_ready)
        if not self.has_tray:
            self.open_dashboard("")
        # The engine (store, history; its heavy work runs in worker processes) is built once
        # the icon is up, not before.
        if engine is not None:
            self.controller.start(scheduler=scheduler, first_cycle=first_cycle, engine=engine)
        else:
            QTimer.singleShot(250, lambda: self.controller.start(
                scheduler=scheduler, first_cycle=first_cycle))

    def _report_ready(self) -> None:
        visible = self.tray is not None and self.tray.icon.isVisible()
        sys.stdout.write(f"clm-tray: tray icon {'visible' if visible else 'NOT visible'}\n")
        sys.stdout.flush()

    # ---- windows ------------------------------------------------------------------------
    def open_dashboard(self, view: str = "") -> Any:
        if self.dashboard is None:
            from clm_tray.gui.dashboard import Dashboard  # QtCharts loads here, not at start

            self.dashboard = Dashboard(self.controller, open_settings=self.open_settings)
            if not self.has_tray:
                self.dashboard.close_policy = self._close_without_tray
                if not self.said_no_tray:
                    self.said_no_tray = True
                    self.dashboard.show_notice(NO_TRAY_NOTE)
            self.controller.refresh()
        self.dashboard.bring_to_front(view)
        return self.dashboard

    def open_settings(self) -> Any:
        from clm_tray.gui.settings_dialog import SettingsDialog

        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        self.settings_dialog = SettingsDialog(self.controller.loaded,
                                              apply=self.controller.apply_settings,
                                              parent=self.dashboard)
        self.settings_dialog.open()
        return self.settings_dialog

    def show_path(self, title: str, path: str) -> QMessageBox:
        """A folder nothing could open: shown with its path selectable, to copy."""
        box = QMessageBox(QMessageBox.Icon.Information, title,
                          f"Nothing on this system could open the folder. It is here:\n\n{path}",
                          QMessageBox.StandardButton.Ok, self.dashboard)
        box.setObjectName("show-path")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        copy = box.addButton("Copy path", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QApplication.clipboard().setText(path))
        box.setModal(False)
        box.show()
        self.path_box = box
        return box

    def _on_instance_message(self, line: str) -> None:
        parts = line.split()
        if parts and parts[0] == "show":
            self.open_dashboard(parts[1] if len(parts) > 1 else "")

    # ---- leaving ------------------------------------------------------------------------
    def _ask_quit(self) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Quit clm-tray?",
                          "Quit clm-tray, or keep checking the model in the background?\n"
                          "(Run clm-tray again to bring this window back.)",
                          QMessageBox.StandardButton.NoButton, self.dashboard)
        box.setObjectName("quit-or-keep")
        quit_button = box.addButton("Quit", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep checking in background", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is quit_button

    def _close_without_tray(self) -> bool:
        if self.ask_quit():
            QTimer.singleShot(0, self.quit)
        return True  # the window closes (hides) either way

    def quit(self, *, quit_app: bool = True) -> None:
        if self.tray is not None:
            self.tray.hide()
        if self.instance is not None:
            self.instance.close()
        if self.settings_dialog is not None:
            self.settings_dialog.close()
        if self.dashboard is not None:
            self.dashboard.close_policy = None
            self.dashboard.close()
        self.controller.quit(quit_app=quit_app)


def _quit_with_the_session(app: QApplication, tray_app: TrayApp) -> Callable[[], None]:
    """A session ending (Windows sign-out or shutdown, macOS log-out) ends Qt's event loop
    without our Quit: go through the same clean quit then, so a running cycle is cancelled
    and recorded as such, not killed mid-way and marked failed at the next start. Returns
    the slot (to disconnect it)."""
    def leave() -> None:
        tray_app.quit(quit_app=False)  # Qt is quitting already

    app.aboutToQuit.connect(leave)
    return leave


def _install_signal_handlers(tray_app: TrayApp) -> QTimer:
    """Ctrl+C / SIGTERM quit cleanly (a timer lets Python run its handlers under Qt)."""

    def handler(_signum: int, _frame: Any) -> None:
        QTimer.singleShot(0, tray_app.quit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread / not supported
            pass
    timer = QTimer(tray_app)
    timer.start(300)
    timer.timeout.connect(lambda: None)
    return timer


def run_gui(loaded: LoadedSettings, *, screenshot: Path | None = None, view: str = "overview",
            demo_backend: Any = None, first_cycle: bool = False,
            size: tuple[int, int] = (1280, 860)) -> int:
    """Start the tray app (or, with ``screenshot``, render the dashboard to a PNG)."""
    if screenshot is not None:
        try:
            return render_screenshot(loaded, Path(screenshot), view, size)
        finally:
            if demo_backend is not None:
                demo_backend.stop()
    try:
        from clm_tray.core.config.logsetup import configure

        configure(loaded.settings)
    except Exception as exc:  # logging must never stop the app
        sys.stderr.write(f"clm-tray: logging not set up: {exc}\n")
    app = make_application()
    instance = SingleInstance()
    if instance.hand_over("show"):
        # A demo backend is left alone: it is the running app's (same workspace, pid file),
        # or it stops by itself with this process (see backend_server.watch_owner).
        sys.stdout.write("clm-tray is already running; brought its dashboard to the front.\n")
        return 0
    if not instance.listen():
        log.warning("single-instance server %s not available; continuing", instance.name)
    tray_app = TrayApp(loaded, demo_backend=demo_backend, instance=instance)
    if not tray_app.has_tray:
        sys.stderr.write(f"clm-tray: {NO_TRAY_NOTE}\n")
    _install_signal_handlers(tray_app)
    _quit_with_the_session(app, tray_app)
    tray_app.start(first_cycle=first_cycle)
    return int(app.exec())


def render_screenshot(loaded: LoadedSettings, path: Path, view: str = "overview",
                      size: tuple[int, int] = (1280, 860)) -> int:
    """Render the dashboard for the current workspace offscreen and save it as a PNG."""
    from clm_tray.core.app.compose import open_engine

    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = make_application()
    from clm_tray.gui.dashboard import VIEWS, Dashboard

    if view not in VIEWS:
        raise SystemExit(f"clm-tray: --view must be one of {', '.join(VIEWS)}")
    engine = open_engine(loaded, "worker")  # reads only; a heavy call would go to a worker
    try:
        runner = TaskRunner()
        notifier = Notifier(NoticeRules(False, 0), channel="tray")
        controller = Controller(loaded, runner=runner, notifier=notifier)
        controller.engine = engine
        controller.snapshot = take_snapshot(engine)
        dash = Dashboard(controller, open_settings=lambda: None)
        dash.show_snapshot(controller.snapshot)
        dash.show_view(view)
        dash.resize(*size)
        dash.show()
        for _ in range(3):
            app.processEvents()
        dash.flush()
        app.processEvents()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not dash.grab().save(str(path)):
            raise SystemExit(f"clm-tray: could not write {path}")
        dash.close()
        notifier.close()
    finally:
        engine.close()
    sys.stdout.write(f"saved {path} ({view})\n")
    return 0
