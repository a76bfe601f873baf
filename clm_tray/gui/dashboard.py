"""The dashboard window: actions, message lines, header cards, then the tabs overview /
drift / versions / activity / replay.

It shows the controller's last Snapshot and sends every button to a controller action; while
a cycle runs, a progress strip with the stage and a Cancel button sits at the bottom. The
tabs are ``gui.dashboard_tabs`` (and ``gui.replay_view``), the message lines
``gui.message_bars``; this module lays them out and shows a snapshot in steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.app.wording import when
from clm_tray.gui.cards import HeaderCards
from clm_tray.gui.controller import Controller
from clm_tray.gui.dashboard_tabs import ActivityTab, DriftTab, OverviewTab, Step, VersionsTab
from clm_tray.gui.firstrun_banner import FirstRunBanner
from clm_tray.gui.icons import app_icon
from clm_tray.gui.message_bars import MessageBars
from clm_tray.gui.replay_view import ReplayView
from clm_tray.gui.snapshot import Snapshot
from clm_tray.gui.widgets import ElidedLabel

VIEWS = ("overview", "drift", "versions", "activity", "replay")


def window_title(controller: Controller) -> str:
    """'clm-tray — <workspace>': which project this window is about, the app named once."""
    env = controller.loaded.env_file
    project = controller.loaded.settings.project_dir
    name = Path(env).parent.name if env else (Path(project).name if project else "")
    return f"clm-tray — {name}" if name else "clm-tray"


class Dashboard(QMainWindow):
    def __init__(self, controller: Controller, *, open_settings: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.close_policy: Callable[[], bool] | None = None  # False keeps the window open
        self.setWindowTitle(window_title(controller))
        self.setWindowIcon(app_icon())
        self.resize(1280, 860)
        runner = controller.runner

        central = QWidget()
        root = QVBoxLayout(central)
        root.setContentsMargins(10, 8, 10, 6)
        self.setCentralWidget(central)

        # actions row
        bar = QHBoxLayout()
        self.retrain_button = QPushButton("Retrain now")
        self.retrain_button.clicked.connect(lambda: controller.retrain())
        self.restart_button = QPushButton("Restart backend")
        self.restart_button.clicked.connect(controller.restart_backend)
        self.pause_button = QPushButton("Pause checks")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(controller.refresh)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.clicked.connect(open_settings)
        self.summary = ElidedLabel("Starting…")
        bar.addWidget(self.summary, 1)
        for b in (self.retrain_button, self.restart_button, self.pause_button,
                  self.refresh_button, self.settings_button):
            bar.addWidget(b)
        root.addLayout(bar)
        runner.bind("retrain", self.retrain_button)
        runner.bind("restart", self.restart_button)
        runner.bind("pause", self.pause_button)

        # first run: not set up yet -> a project folder or the demo workspace
        self.firstrun_banner = FirstRunBanner(controller)
        root.addWidget(self.firstrun_banner)

        # errors, "done" notices and standing notices, each a line of its own
        self.messages = MessageBars(self)
        for line in self.messages.widgets():
            root.addWidget(line)

        self.cards = HeaderCards()
        root.addWidget(self.cards)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        root.addWidget(self.tabs, 1)

        self.overview = OverviewTab()
        self.tabs.addTab(self.overview, "overview")
        self.drift = DriftTab()
        self.tabs.addTab(self.drift, "drift")
        self.versions = VersionsTab(controller)
        self.tabs.addTab(self.versions, "versions")
        self.activity = ActivityTab()
        self.tabs.addTab(self.activity, "activity")

        # replay: does retraining pay on this data? (its own view, its own engine call)
        self.replay_view = ReplayView(controller)
        self.tabs.addTab(self.replay_view, "replay")

        # progress strip
        self.progress_strip = QFrame()
        pl = QHBoxLayout(self.progress_strip)
        pl.setContentsMargins(0, 4, 0, 0)
        self.stage_label = ElidedLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(controller.cancel)
        pl.addWidget(self.stage_label, 2)
        pl.addWidget(self.progress_bar, 3)
        pl.addWidget(self.cancel_button)
        self.progress_strip.hide()
        root.addWidget(self.progress_strip)
        runner.bind("cancel", self.cancel_button)

        # A new snapshot is shown in steps, one event-loop turn each (see show_snapshot).
        self._snap: Snapshot | None = None
        self._steps: list[Step] = []
        self._step_timer = QTimer(self, singleShot=True, interval=0)
        self._step_timer.timeout.connect(self._next_step)

        controller.snapshot_changed.connect(self.show_snapshot)
        controller.progress.connect(self.show_progress)
        controller.running_changed.connect(self.show_running)
        controller.error.connect(self.messages.show_error)
        controller.info.connect(self.messages.show_done)
        if controller.snapshot is not None:
            self.show_snapshot(controller.snapshot)
        self.show_running(controller.cycle_running)
        self.versions.update_buttons()

    # ---- views --------------------------------------------------------------------------
    def show_view(self, view: str) -> None:
        if view in VIEWS:
            self.tabs.setCurrentIndex(VIEWS.index(view))

    def current_view(self) -> str:
        return VIEWS[self.tabs.currentIndex()]

    def bring_to_front(self, view: str = "") -> None:
        if view:
            self.show_view(view)
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def show_snapshot(self, snap: Snapshot) -> None:
        """Show a snapshot: at once while the window is hidden, else a part per loop turn.

        Each part (cards, each chart, each table, the log) is only a few milliseconds, and
        between them Qt lays out and paints what changed, so the GUI never stalls for the
        sum. Widgets skip what did not change; charts on a hidden tab draw when shown.
        """
        self._snap = snap
        self._steps = [self._show_header, *self.cards.parts(), *self.overview.parts(),
                       *self.drift.chart_parts(), self._show_lists]
        if not self.isVisible():
            self.flush()
        else:
            self._step_timer.start()

    def flush(self) -> None:
        """Finish showing the last snapshot now (screenshots, tests)."""
        self._step_timer.stop()
        while self._steps:
            self._run_step()

    def _next_step(self) -> None:  # the step timer's slot: one part, then the next turn
        self._run_step()
        if self._steps:
            if self.isVisible():
                self._step_timer.start()
            else:
                self.flush()  # hidden meanwhile: nothing is painted, finish now

    def _run_step(self) -> None:
        if self._steps and self._snap is not None:
            step = self._steps.pop(0)
            if step(self._snap) is False:  # a chart drawn in parts: again next turn
                self._steps.insert(0, step)

    def _show_header(self, snap: Snapshot) -> None:
        st = snap.status
        self.summary.setText(self.controller.stage_text() if self.controller.cycle_running
                             else st.summary)
        self.messages.clear_error_if_resolved(snap)
        pause_text = "Resume checks" if st.scheduler.paused else "Pause checks"
        if self.pause_button.text() != pause_text:
            self.pause_button.setText(pause_text)
        if self.firstrun_banner.isVisibleTo(self) and not self.firstrun_banner.needed():
            self.firstrun_banner.hide()  # set up meanwhile (Settings…, another instance)
        self.statusBar().showMessage(f"Updated {when(snap.taken_at)[11:]}"
                                     f" · {st.workspace or ''}".rstrip(" ·"), 0)

    def _show_lists(self, snap: Snapshot) -> None:
        # The tables and the log in one step, the last: when one of them shows a snapshot,
        # everything else on the dashboard shows it too (each is cheap: unchanged cells and
        # tables are skipped, and hidden tabs do not paint).
        self.activity.show_log(snap)
        self.drift.show_table(snap)
        self.versions.show_snapshot(snap)
        self.activity.show_history(snap)

    def show_progress(self, _stage: str, progress: float, _message: str) -> None:
        """The strip and the header say the same line (the tray tooltip says it too)."""
        self.progress_strip.show()
        line = self.controller.stage_text()
        self.stage_label.setText(line)
        self.summary.setText(line)
        self.progress_bar.setValue(int(round(progress * 100)))

    def show_running(self, running: bool) -> None:
        self.progress_strip.setVisible(running)
        if not running and self.controller.snapshot is not None:
            self.summary.setText(self.controller.snapshot.status.summary)
        self.retrain_button.setEnabled(not running and not self.controller.runner.is_busy(
            "retrain"))
        if running:
            stage, progress, message = self.controller.stage
            self.show_progress(stage or "starting", progress, message)

    def show_notice(self, text: str) -> None:
        self.messages.show_notice(text)

    def show_error(self, text: str) -> None:
        self.messages.show_error(text)

    def show_done(self, text: str) -> None:
        """A finished action, said in the window; it goes away by itself."""
        self.messages.show_done(text)

    # ---- buttons ------------------------------------------------------------------------
    def _toggle_pause(self) -> None:
        snap = self.controller.snapshot
        if snap is not None and snap.status.scheduler.paused:
            self.controller.resume()
        else:
            self.controller.pause(None)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.close_policy is not None and not self.close_policy():
            event.ignore()
            return
        event.accept()
