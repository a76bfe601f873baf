"""The dashboard window: header cards, then tabs overview / drift / versions / activity.

It shows the controller's last Snapshot and sends every button to a controller action; while
a cycle runs, a progress strip with the stage and a Cancel button sits at the bottom.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.app.status import Health, Outcome
from clm_tray.gui.cards import HeaderCards
from clm_tray.gui.charts import AccuracyChart, DriftChart, ImportanceChart
from clm_tray.gui.controller import Controller
from clm_tray.gui.firstrun_banner import FirstRunBanner
from clm_tray.gui.icons import app_icon
from clm_tray.gui.replay_view import ReplayView
from clm_tray.gui.snapshot import Snapshot
from clm_tray.gui.tables import BackupsTable, DriftTable, HistoryTable, VersionsTable, when_text
from clm_tray.gui.widgets import ElidedLabel

VIEWS = ("overview", "drift", "versions", "activity", "replay")
DONE_NOTICE_MS = 20_000


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

        # the one place errors are shown
        self.banner = QFrame()
        self.banner.setObjectName("error-banner")
        self.banner.setStyleSheet("#error-banner { background: #f8d7d7; border: 1px solid "
                                  "#d42a2a; border-radius: 4px; } QLabel { color: #3f0707; }")
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(8, 4, 4, 4)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dismiss = QToolButton()
        dismiss.setText("✕")
        dismiss.setAutoRaise(True)
        dismiss.clicked.connect(self.clear_error)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(dismiss)
        self.banner.hide()
        root.addWidget(self.banner)

        # feedback after an action ("Rolled back to v0003 — backend verified"): clears itself
        self.done_notice = QLabel()
        self.done_notice.setObjectName("done-notice")
        self.done_notice.setWordWrap(True)
        self.done_notice.setStyleSheet("#done-notice { background: #dff0e3; color: #0b3318; "
                                       "border: 1px solid #2e9d4f; border-radius: 4px; "
                                       "padding: 4px; }")
        self.done_notice.hide()
        root.addWidget(self.done_notice)
        self._done_timer = QTimer(self, singleShot=True, interval=DONE_NOTICE_MS)
        self._done_timer.timeout.connect(self.done_notice.hide)
        self._banner_since: float | None = None  # when the error banner was shown

        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("#notice { background: #fff1cc; color: #3d2a00; "
                                  "border: 1px solid #c98a00; border-radius: 4px; padding: 4px; }")
        self.notice.hide()
        root.addWidget(self.notice)

        self.cards = HeaderCards()
        root.addWidget(self.cards)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        root.addWidget(self.tabs, 1)

        # overview
        overview = QSplitter(Qt.Orientation.Horizontal)
        self.importance_chart = ImportanceChart()
        self.accuracy_chart = AccuracyChart()
        for chart in (self.importance_chart, self.accuracy_chart):
            chart.auto = False  # drawn by show_snapshot's steps, one part per turn
        overview.addWidget(self.importance_chart)
        overview.addWidget(self.accuracy_chart)
        overview.setSizes([560, 640])
        self.tabs.addTab(overview, "overview")

        # drift
        drift = QWidget()
        dl = QVBoxLayout(drift)
        self.drift_score = QLabel("No drift check yet.")
        f = self.drift_score.font()
        f.setBold(True)
        self.drift_score.setFont(f)
        self.drift_score.setWordWrap(True)
        self.drift_table = DriftTable()
        self.drift_chart = DriftChart()
        self.drift_chart.auto = False
        drift_split = QSplitter(Qt.Orientation.Vertical)
        drift_split.addWidget(self.drift_chart)
        drift_split.addWidget(self.drift_table)
        drift_split.setSizes([420, 200])
        dl.addWidget(self.drift_score)
        dl.addWidget(drift_split, 1)
        self.tabs.addTab(drift, "drift")

        # versions
        versions = QWidget()
        vl = QVBoxLayout(versions)
        vl.addWidget(QLabel("Model versions (newest first)"))
        self.versions_table = VersionsTable()
        self.versions_table.itemSelectionChanged.connect(self._update_version_buttons)
        vl.addWidget(self.versions_table, 3)
        vb = QHBoxLayout()
        self.rollback_button = QPushButton("Roll back to this")
        self.rollback_button.clicked.connect(self._rollback_selected)
        self.promote_button = QPushButton("Promote")
        self.promote_button.clicked.connect(self._promote_selected)
        vb.addWidget(self.rollback_button)
        vb.addWidget(self.promote_button)
        vb.addStretch(1)
        vl.addLayout(vb)
        vl.addWidget(QLabel("Backups in the deploy folder"))
        self.backups_table = BackupsTable()
        vl.addWidget(self.backups_table, 2)
        self.tabs.addTab(versions, "versions")
        runner.bind("rollback", self.rollback_button)
        runner.bind("promote", self.promote_button)
        runner.busy_changed.connect(lambda *_a: self._update_version_buttons())

        # activity
        activity = QSplitter(Qt.Orientation.Vertical)
        self.history_table = HistoryTable()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log_view.setFont(mono)
        activity.addWidget(self.history_table)
        activity.addWidget(self.log_view)
        activity.setSizes([420, 260])
        self.tabs.addTab(activity, "activity")

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
        self._steps: list[Callable[[Snapshot], bool | None]] = []
        self._step_timer = QTimer(self, singleShot=True, interval=0)
        self._step_timer.timeout.connect(self._next_step)

        controller.snapshot_changed.connect(self.show_snapshot)
        controller.progress.connect(self.show_progress)
        controller.running_changed.connect(self.show_running)
        controller.error.connect(self.show_error)
        controller.info.connect(self.show_done)
        if controller.snapshot is not None:
            self.show_snapshot(controller.snapshot)
        self.show_running(controller.cycle_running)
        self._update_version_buttons()

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
        self._steps = [self._show_header, *self.cards.parts(),
                       self._show_importance, self._draw_importance,
                       self._show_accuracy, self._draw_accuracy,
                       self._show_drift_chart, self._draw_drift_chart,
                       self._show_lists]
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
        self._clear_error_if_resolved(snap)
        pause_text = "Resume checks" if st.scheduler.paused else "Pause checks"
        if self.pause_button.text() != pause_text:
            self.pause_button.setText(pause_text)
        if self.firstrun_banner.isVisibleTo(self) and not self.firstrun_banner.needed():
            self.firstrun_banner.hide()  # set up meanwhile (Settings…, another instance)
        self.statusBar().showMessage(f"Updated {when_text(snap.taken_at)[11:]}"
                                     f" · {st.workspace or ''}".rstrip(" ·"), 0)

    def _show_importance(self, snap: Snapshot) -> None:
        champ = snap.status.champion
        self.importance_chart.show_importance(snap.importance, champ.id if champ else "")

    def _draw_importance(self, _snap: Snapshot) -> bool:
        return self.importance_chart.step()

    def _show_accuracy(self, snap: Snapshot) -> None:
        self.accuracy_chart.show_history(snap.accuracy)

    def _draw_accuracy(self, _snap: Snapshot) -> bool:
        return self.accuracy_chart.step()

    def _show_drift_chart(self, snap: Snapshot) -> None:
        f = snap.facts
        self.drift_chart.show_drift(
            snap.status.drift, f"<b>{f.drift}</b>.<br>Nothing to do: it is measured by itself "
            "on the data that arrives after the model was trained, once there is enough.")
        self.drift_table.setVisible(bool((snap.status.drift or {}).get("features")))

    def _draw_drift_chart(self, _snap: Snapshot) -> bool:
        return self.drift_chart.step()

    def _show_lists(self, snap: Snapshot) -> None:
        # The tables and the log in one step, the last: when one of them shows a snapshot,
        # everything else on the dashboard shows it too (each is cheap: unchanged cells and
        # tables are skipped, and hidden tabs do not paint).
        self._show_log(snap)
        self._show_drift(snap)
        self._show_versions(snap)
        self._show_backups(snap)
        self._show_history(snap)

    def _show_log(self, snap: Snapshot) -> None:
        if self.log_view.toPlainText() != snap.log_tail:
            self.log_view.setPlainText(snap.log_tail)
            bar = self.log_view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _show_drift(self, snap: Snapshot) -> None:
        f = snap.facts
        text = f.drift + (f" · {f.new_rows}" if f.new_rows else "")
        if self.drift_score.text() != text:
            self.drift_score.setText(text)
            self.drift_score.setToolTip(f.drift_detail + " KS D is the largest gap between "
                                        "the two distributions.")
        self.drift_table.show_drift(snap.status.drift)

    def _show_versions(self, snap: Snapshot) -> None:
        self.versions_table.show_versions(snap.versions)
        self._update_version_buttons()

    def _show_backups(self, snap: Snapshot) -> None:
        self.backups_table.show_backups(snap.backups)

    def _show_history(self, snap: Snapshot) -> None:
        self.history_table.show_history(snap.history)

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
        self.notice.setText(text)
        self.notice.show()

    def show_error(self, text: str) -> None:
        self.banner_text.setText(text)
        self.banner.show()
        self._banner_since = time.time()

    def clear_error(self) -> None:
        self.banner.hide()
        self._banner_since = None

    def _clear_error_if_resolved(self, snap: Snapshot) -> None:
        """An error stays until its cause is gone: a later cycle ended well, or a later
        backend check was healthy, and nothing is in error now."""
        since = self._banner_since
        if since is None or snap.status.health == Health.ERROR:
            return
        last = snap.status.last_cycle
        cycle_ok = (last is not None and last.finished_at is not None
                    and last.finished_at >= since and not Outcome.is_failure(last.outcome))
        b = snap.status.backend or {}
        backend_ok = bool(b.get("ok")) and float(b.get("checked_at") or 0) >= since
        if cycle_ok or backend_ok:
            self.clear_error()

    def show_done(self, text: str) -> None:
        """A finished action, said in the window; it goes away by itself."""
        self.done_notice.setText(text)
        self.done_notice.show()
        self._done_timer.start()

    # ---- buttons ------------------------------------------------------------------------
    def _toggle_pause(self) -> None:
        snap = self.controller.snapshot
        if snap is not None and snap.status.scheduler.paused:
            self.controller.resume()
        else:
            self.controller.pause(None)

    def _update_version_buttons(self) -> None:
        key = self.versions_table.selected_key()
        status = self.versions_table.status_of.get(key or "", "")
        runner = self.controller.runner
        self.rollback_button.setEnabled(
            bool(key) and status not in ("champion", "rejected") and not runner.is_busy(
                "rollback"))
        self.promote_button.setEnabled(
            bool(key) and status in ("challenger", "candidate", "stored", "no edge")
            and not runner.is_busy("promote"))

    def select_version(self, version_id: str) -> None:
        keys = self.versions_table.keys
        if version_id in keys:
            self.versions_table.selectRow(keys.index(version_id))

    def _rollback_selected(self) -> None:
        key = self.versions_table.selected_key()
        if key:
            self.controller.rollback(key)

    def _promote_selected(self) -> None:
        key = self.versions_table.selected_key()
        if key:
            self.controller.promote(key)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.close_policy is not None and not self.close_policy():
            event.ignore()
            return
        event.accept()
