"""The dashboard's tables: drift, versions, backups, history. They show; they never decide."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from clm_tray.core.app.status import BackupRow, CycleRecord, DriftReport, Outcome, VersionRow
from clm_tray.core.app.wording import decimal, pct, shadow_words, size, when

LONG_CELL = 48  # a longer cell text is also its tooltip (a narrow column elides it)

OVER = QColor("#f8d7d7")
CHAMPION = QColor("#dff0e3")
CHALLENGER = QColor("#fff1cc")
FAILED = QColor("#f8d7d7")


class DataTable(QTableWidget):
    """A read-only, row-selecting table filled from lists of cell texts."""

    def __init__(self, headers: Sequence[str], stretch: int | None = None) -> None:
        super().__init__(0, len(headers))
        self.setHorizontalHeaderLabels(list(headers))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if stretch is not None:
            header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
        else:
            header.setStretchLastSection(True)
        self.keys: list[str] = []
        self._shown: object = None

    def fill(self, rows: Sequence[Sequence[str]], keys: Sequence[str] | None = None,
             colors: Sequence[QColor | None] | None = None,
             tips: dict[tuple[int, int], str] | None = None) -> None:
        """Show these rows; cells whose text and colour did not change are left alone.
        ``tips`` holds details per (row, column), shown on hover."""
        new_rows = [[str(t) for t in r] for r in rows]
        new_colors = [colors[i] if colors and i < len(colors) else None
                      for i in range(len(new_rows))]
        tips = dict(tips or {})
        shown = (new_rows, list(keys or []), new_colors, tips)
        if shown == self._shown:
            return
        old_rows, _old_keys, old_colors, old_tips = self._shown or ([], [], [], {})  # type: ignore[misc]
        self._shown = shown
        selected = self.selected_key()
        self.setUpdatesEnabled(False)  # one repaint after the whole update, not per cell
        try:
            self.setRowCount(len(new_rows))
            self.keys = list(keys or [str(i) for i in range(len(new_rows))])
            for r, cells in enumerate(new_rows):
                color = new_colors[r]
                same_row = r < len(old_rows) and old_colors[r] == color
                for c, text in enumerate(cells):
                    tip = tips.get((r, c)) or (text if len(text) > LONG_CELL else "")
                    if same_row and c < len(old_rows[r]) and old_rows[r][c] == text \
                            and self.item(r, c) is not None and old_tips.get((r, c)) == \
                            tips.get((r, c)):
                        continue
                    item = QTableWidgetItem(text)
                    item.setToolTip(tip)
                    if c > 0 and _numeric(text):
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    if color is not None:
                        item.setBackground(QBrush(color))
                        item.setForeground(QBrush(QColor("#111111")))
                    self.setItem(r, c, item)
            if selected in self.keys:
                self.selectRow(self.keys.index(selected))
        finally:
            self.setUpdatesEnabled(True)

    def selected_key(self) -> str | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        if not rows or rows[0].row() >= len(self.keys):
            return None
        return self.keys[rows[0].row()]

    def cell(self, row: int, col: int) -> str:
        item = self.item(row, col)
        return item.text() if item is not None else ""


def _numeric(text: str) -> bool:
    t = text.replace("%", "").replace(",", "").replace("s", "").strip()
    try:
        float(t.split()[0] if t else "x")
    except ValueError:
        return False
    return True


class DriftTable(DataTable):
    def __init__(self) -> None:
        # numbers next to their feature's name; the spare width goes to the last column
        super().__init__(["Feature", "PSI", "KS D", "Importance", "Over threshold"])

    def show_drift(self, drift: DriftReport | None) -> None:
        feats = sorted(drift.features if drift else [], key=lambda f: (not f.over, -f.psi))
        rows = [[f.feature, f"{f.psi:.4f}", decimal(f.ks_d), pct(f.importance),
                 "yes" if f.over else ""] for f in feats]
        self.fill(rows, [f.feature for f in feats], [OVER if f.over else None for f in feats])


class VersionsTable(DataTable):
    COLUMNS = ["Version", "Trained at", "Test acc.", "Train acc.", "AUC", "Always-guessing",
               "Status", "Size", "Compared with the model in use"]

    def __init__(self) -> None:
        super().__init__(self.COLUMNS, stretch=8)
        self.status_of: dict[str, str] = {}

    def show_versions(self, versions: list[VersionRow]) -> None:
        rows, colors = [], []
        tips: dict[tuple[int, int], str] = {}
        self.status_of = {}
        for r, v in enumerate(reversed(versions)):  # newest first
            shadow, detail = shadow_words(v.shadow)
            if detail:
                tips[(r, 8)] = detail
            status = v.status + (" (leak?)" if v.leakage else "")
            rows.append([v.id, when(v.trained_at), pct(v.test_accuracy),
                         pct(v.train_accuracy), decimal(v.auc),
                         pct(v.baseline), status, size(v.size or None), shadow])
            colors.append(CHAMPION if v.status == "champion" else
                          CHALLENGER if v.status == "challenger" else None)
            self.status_of[v.id] = v.status
        self.fill(rows, [v.id for v in reversed(versions)], colors, tips)


class BackupsTable(DataTable):
    def __init__(self) -> None:
        super().__init__(["Backup", "Created", "Version", "Size", "sha256"], stretch=4)

    def show_backups(self, backups: list[BackupRow]) -> None:
        rows = [[b.name, when(b.created), b.version or "?", size(b.size or None),
                 (b.sha256 or "")[:16]] for b in sorted(backups, key=lambda b: b.name,
                                                        reverse=True)]
        self.fill(rows, [r[0] for r in rows])


class HistoryTable(DataTable):
    def __init__(self) -> None:
        super().__init__(["Time", "Trigger", "Outcome", "Duration", "Version", "Reason"],
                         stretch=5)

    def show_history(self, history: list[CycleRecord]) -> None:
        rows, colors = [], []
        tips: dict[tuple[int, int], str] = {}
        for r, h in enumerate(history):
            dur = "running" if h.finished_at is None else (
                f"{h.duration_s:.1f} s" if h.duration_s is not None else "–")
            compared = h.outcome in (Outcome.WAITING, Outcome.REJECTED)
            said = shadow_words(h.shadow)[0] if compared else ""
            if said:
                tips[(r, 5)] = h.reason  # the test's figures, for whoever wants them
            rows.append([when(h.started_at), h.trigger, h.outcome or "running", dur,
                         h.version or "–", said or h.reason])
            colors.append(FAILED if h.failed else None)
        self.fill(rows, [str(h.id) for h in history], colors, tips)
