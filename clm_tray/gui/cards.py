"""The four header cards: Model, Quality, Backend, Scheduler."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.status import Health
from clm_tray.gui.controller import Snapshot
from clm_tray.gui.tray import age_text, hhmm, pct

MAX_VALUE_CHARS = 64  # longer values (error texts) are cut here; the full text is the tooltip
TONES = {"ok": "#2e9d4f", "warn": "#c98a00", "bad": "#d42a2a", "idle": "#7a7f87",
         "busy": "#2f6fd6"}


class Card(QFrame):
    """A titled box of label/value rows with a coloured edge saying how things are.

    The box and its edge are painted here rather than by a style sheet: changing a style
    sheet re-polishes the card and every label in it, which cost tens of milliseconds on the
    GUI thread each time a card changed colour. Rows are kept and reused; a refresh that
    keeps the same rows only changes texts.
    """

    EDGE = 5  # px, the coloured left edge
    SPARE_ROWS = 6  # rows made up front (hidden); more are made when a card needs them

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"card-{title.lower()}")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumWidth(220)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12 + self.EDGE, 9, 13, 11)
        self.title = QLabel(title)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        outer.addWidget(self.title)
        self.headline = QLabel("–")
        hfont = self.headline.font()
        hfont.setPointSizeF(hfont.pointSizeF() * 1.35)
        hfont.setBold(True)
        self.headline.setFont(hfont)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.headline)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(2)
        # labels as wide as they need, values get the rest (not half the card each)
        self.grid.setColumnStretch(0, 0)
        self.grid.setColumnStretch(1, 1)
        outer.addLayout(self.grid)
        outer.addStretch(1)
        self.values: dict[str, QLabel] = {}
        self._rows: list[tuple[QLabel, QLabel]] = []  # every row made so far, shown or not
        self._tone = "idle"
        self._shown: object = None
        for r in range(self.SPARE_ROWS):  # made now, so a refresh only sets texts
            name, val = self._new_row(r)
            for w in (name, val):
                w.ensurePolished()
                w.hide()
            self._rows.append((name, val))

    @property
    def tone(self) -> str:
        return self._tone

    def set_tone(self, tone: str) -> None:
        if tone != self._tone:
            self._tone = tone
            self.update()  # repaints the edge only: no style sheet, no re-polish

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        box = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(box, 4, 4)
        p.setClipRect(QRectF(0, 0, self.EDGE, self.height()))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(TONES.get(self._tone, TONES["idle"])))
        p.drawRoundedRect(QRectF(self.rect()), 4, 4)
        p.end()

    def set_rows(self, headline: str, rows: list[tuple[str, str]], tone: str) -> None:
        if self._shown == (headline, rows, tone):
            return
        self._shown = (headline, list(rows), tone)
        if self.headline.text() != headline:
            self.headline.setText(headline)
        self.set_tone(tone)
        self.values = {}
        for r, (label, value) in enumerate(rows):
            if r == len(self._rows):
                self._rows.append(self._new_row(r))
            name, val = self._rows[r]
            if name.text() != label:
                name.setText(label)
            _set_value(val, value)
            name.show()
            val.show()
            self.values[label] = val
        for name, val in self._rows[len(rows):]:  # rows no longer needed: hidden, kept
            name.hide()
            val.hide()

    def _new_row(self, r: int) -> tuple[QLabel, QLabel]:
        name = QLabel()
        name.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        val = QLabel()
        val.setWordWrap(True)
        val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid.addWidget(name, r, 0, Qt.AlignmentFlag.AlignTop)
        self.grid.addWidget(val, r, 1)
        return name, val


def _set_value(label: QLabel, value: str) -> None:
    """Keep a card a few lines tall: a long value is cut, and shown whole as the tooltip."""
    text, tip = value, ""
    if len(value) > MAX_VALUE_CHARS:
        text, tip = value[:MAX_VALUE_CHARS - 1].rstrip() + "…", value
    if label.text() != text:
        label.setText(text)  # an unchanged text would still re-lay-out the card
    if label.toolTip() != tip:
        label.setToolTip(tip)


class HeaderCards(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.model = Card("Model")
        self.quality = Card("Quality")
        self.backend = Card("Backend")
        self.scheduler = Card("Scheduler")
        for card in (self.model, self.quality, self.backend, self.scheduler):
            row.addWidget(card, 1)

    def show_snapshot(self, snap: Snapshot) -> None:
        for show in self.parts():
            show(snap)

    def parts(self) -> list[Callable[[Snapshot], None]]:
        """One update per card, so a caller can spread them over event-loop turns."""
        return [self.show_model, self.show_quality, self.show_backend, self.show_scheduler]

    def show_model(self, snap: Snapshot) -> None:
        st = snap.status
        champ = st.champion
        data = [("Data", _data_text(st))] if _data_text(st) else []
        if champ is None:
            self.model.set_rows("No model yet", data, "warn")
        else:
            self.model.set_rows(champ.id, [
                ("Age", f"{age_text(st.age_hours)} (retrain after {st.retrain_hours:g} h)"),
                ("Trained", champ.trained_at.replace("T", " ")[:16]),
                *data,
                ("Challenger", st.challenger.id if st.challenger else "none"),
            ], "ok" if st.fresh else "warn")

    def show_quality(self, snap: Snapshot) -> None:
        st = snap.status
        champ = st.champion
        perf = st.performance or {}
        live = perf.get("accuracy") if perf.get("enough") else None
        if champ is None:
            self.quality.set_rows("–", [], "idle")
        else:
            tone = "bad" if perf.get("degraded") else ("warn" if champ.leakage else "ok")
            self.quality.set_rows(f"Test {pct(champ.test_accuracy)}", [
                ("Train", pct(champ.train_accuracy)),
                ("AUC", "–" if champ.auc is None else f"{champ.auc:.3f}"),
                ("Baseline", pct(champ.baseline)),
                ("Live", pct(live) if live is not None else
                 (perf.get("reason") or "not measured yet")),
            ], tone)

    def show_backend(self, snap: Snapshot) -> None:
        b = snap.status.backend
        if b is None:
            self.backend.set_rows("Not checked yet", [], "idle")
        elif b.get("skipped"):
            self.backend.set_rows("Files only", [("Note", str(b.get("reason", "")))], "idle")
        elif b.get("state") == "unknown":  # the deploy folder changed after the last check
            self.backend.set_rows("Unknown", [("Why", str(b.get("reason", "")))], "idle")
        else:
            lat = b.get("latency_ms")
            self.backend.set_rows("Healthy" if b.get("ok") else "Unhealthy", [
                ("Latency", f"{lat:.0f} ms" if isinstance(lat, (int, float)) else "–"),
                ("Loaded", str(b.get("reported_version") or
                               (b.get("reported_sha256") or "?")[:12])),
                ("URL", str(b.get("url", ""))),
                ("Checked", hhmm(b.get("checked_at"))),
            ] + ([] if b.get("ok") else [("Why", str(b.get("reason", "")))]),
                "ok" if b.get("ok") else "bad")

    def show_scheduler(self, snap: Snapshot) -> None:
        st = snap.status
        sc = st.scheduler
        rows = [(j.name.capitalize(), f"next {hhmm(j.next_run) or '–'}"
                 + (f" · {j.last_outcome}" if j.last_outcome else "")) for j in sc.jobs]
        if sc.paused:
            until = f" until {hhmm(sc.paused_until)}" if sc.paused_until else ""
            head, tone = f"Paused{until}", "idle"
            rows.insert(0, ("Why", sc.paused_reason))
        elif not sc.enabled:
            head, tone = "Disabled", "idle"
        elif sc.cycle_stage:
            head, tone = f"Retraining: {sc.cycle_stage}", "busy"
        elif sc.running:
            head, tone = "Running", "ok" if st.health == Health.HEALTHY else "warn"
        else:
            head, tone = "Not running", "warn"
            if not rows:
                rows.append(("Checks", "run by the tray app or `clm-tray run`"))
        if sc.backoff_until:
            rows.append(("Backoff", f"until {hhmm(sc.backoff_until)}: {sc.backoff_reason}"))
        if sc.retrain_due:
            rows.append(("Due", sc.retrain_due))
        self.scheduler.set_rows(head, rows, tone)


def _data_text(st: object) -> str:
    rows = getattr(st, "data_rows", None)
    symbols = getattr(st, "data_symbols", None)
    if rows is None:
        return ""  # the engine did not say; the row is left out
    return f"{rows:,} rows" + (f" · {symbols} symbols" if symbols else "")
