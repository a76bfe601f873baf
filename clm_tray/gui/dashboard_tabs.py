"""The dashboard's tabs: overview, drift, versions and activity (replay is ``replay_view``).

Each tab builds its own widgets and shows its part of a Snapshot; the window
(``gui.dashboard``) decides when, one part per event-loop turn. A chart's ``*_parts`` are
(show, draw) steps: a draw step returns False while it needs another turn.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from clm_tray.gui.charts.accuracy import AccuracyChart
from clm_tray.gui.charts.drift import DriftChart
from clm_tray.gui.charts.importance import ImportanceChart
from clm_tray.gui.controller import Controller
from clm_tray.gui.snapshot import Snapshot
from clm_tray.gui.tables import BackupsTable, DriftTable, HistoryTable, VersionsTable

Step = Callable[[Snapshot], bool | None]  # one part of showing a snapshot


class OverviewTab(QSplitter):
    """What the champion relies on, beside accuracy across versions."""

    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.importance_chart = ImportanceChart()
        self.accuracy_chart = AccuracyChart()
        for chart in (self.importance_chart, self.accuracy_chart):
            chart.auto = False  # drawn by the dashboard's steps, one part per turn
        self.addWidget(self.importance_chart)
        self.addWidget(self.accuracy_chart)
        self.setSizes([560, 640])

    def parts(self) -> list[Step]:
        return [self._show_importance, lambda _snap: self.importance_chart.step(),
                self._show_accuracy, lambda _snap: self.accuracy_chart.step()]

    def _show_importance(self, snap: Snapshot) -> None:
        champ = snap.status.champion
        self.importance_chart.show_importance(snap.importance, champ.id if champ else "")

    def _show_accuracy(self, snap: Snapshot) -> None:
        self.accuracy_chart.show_history(snap.accuracy)


class DriftTab(QWidget):
    """How far new data moved from training: the verdict, the chart, every feature's row."""

    def __init__(self) -> None:
        super().__init__()
        dl = QVBoxLayout(self)
        self.score = QLabel("No drift check yet.")
        f = self.score.font()
        f.setBold(True)
        self.score.setFont(f)
        self.score.setWordWrap(True)
        self.table = DriftTable()
        self.chart = DriftChart()
        self.chart.auto = False
        drift_split = QSplitter(Qt.Orientation.Vertical)
        drift_split.addWidget(self.chart)
        drift_split.addWidget(self.table)
        drift_split.setSizes([420, 200])
        dl.addWidget(self.score)
        dl.addWidget(drift_split, 1)

    def chart_parts(self) -> list[Step]:
        return [self._show_chart, lambda _snap: self.chart.step()]

    def _show_chart(self, snap: Snapshot) -> None:
        f = snap.facts
        self.chart.show_drift(
            snap.status.drift, f"<b>{f.drift}</b>.<br>Nothing to do: it is measured by itself "
            "on the data that arrives after the model was trained, once there is enough.")
        self.table.setVisible(bool(snap.status.drift and snap.status.drift.features))

    def show_table(self, snap: Snapshot) -> None:
        f = snap.facts
        text = f.drift + (f" · {f.new_rows}" if f.new_rows else "")
        if self.score.text() != text:
            self.score.setText(text)
            self.score.setToolTip(f.drift_detail + " KS D is the largest gap between "
                                  "the two distributions.")
        self.table.show_drift(snap.status.drift)


class VersionsTab(QWidget):
    """Every model version, with roll back / promote for the selected one, and the backups."""

    def __init__(self, controller: Controller) -> None:
        super().__init__()
        self.controller = controller
        vl = QVBoxLayout(self)
        vl.addWidget(QLabel("Model versions (newest first)"))
        self.table = VersionsTable()
        self.table.itemSelectionChanged.connect(self.update_buttons)
        vl.addWidget(self.table, 3)
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
        runner = controller.runner
        runner.bind("rollback", self.rollback_button)
        runner.bind("promote", self.promote_button)
        runner.busy_changed.connect(lambda *_a: self.update_buttons())

    def show_snapshot(self, snap: Snapshot) -> None:
        self.table.show_versions(snap.versions)
        self.update_buttons()
        self.backups_table.show_backups(snap.backups)

    def update_buttons(self) -> None:
        key = self.table.selected_key()
        status = self.table.status_of.get(key or "", "")
        runner = self.controller.runner
        self.rollback_button.setEnabled(
            bool(key) and status not in ("champion", "rejected") and not runner.is_busy(
                "rollback"))
        self.promote_button.setEnabled(
            bool(key) and status in ("challenger", "candidate", "stored", "no edge")
            and not runner.is_busy("promote"))

    def select_version(self, version_id: str) -> None:
        keys = self.table.keys
        if version_id in keys:
            self.table.selectRow(keys.index(version_id))

    def _rollback_selected(self) -> None:
        key = self.table.selected_key()
        if key:
            self.controller.rollback(key)

    def _promote_selected(self) -> None:
        key = self.table.selected_key()
        if key:
            self.controller.promote(key)


class ActivityTab(QSplitter):
    """What happened: the cycle history above the log's tail."""

    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Vertical)
        self.history_table = HistoryTable()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log_view.setFont(mono)
        self.addWidget(self.history_table)
        self.addWidget(self.log_view)
        self.setSizes([420, 260])

    def show_log(self, snap: Snapshot) -> None:
        if self.log_view.toPlainText() != snap.log_tail:
            self.log_view.setPlainText(snap.log_tail)
            bar = self.log_view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def show_history(self, snap: Snapshot) -> None:
        self.history_table.show_history(snap.history)
