"""The four header cards: Model, Quality, Backend, Scheduler."""

from __future__ import annotations

from PySide6.QtCore import Qt
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
    """A titled box of label/value rows with a coloured edge saying how things are."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"card-{title.lower()}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(220)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 8, 12, 10)
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
        self._tone = ""
        self._shown: object = None
        self.set_tone("idle")

    def set_tone(self, tone: str) -> None:
        if tone == self._tone:
            return  # re-polishing a style sheet is expensive
        self._tone = tone
        color = TONES.get(tone, TONES["idle"])
        self.setStyleSheet(f"#{self.objectName()} {{ border: 1px solid palette(mid); "
                           f"border-left: 5px solid {color}; border-radius: 4px; }}")

    def set_rows(self, headline: str, rows: list[tuple[str, str]], tone: str) -> None:
        if self._shown == (headline, rows, tone):
            return
        self._shown = (headline, list(rows), tone)
        self.headline.setText(headline)
        self.set_tone(tone)
        if [label for label, _ in rows] == list(self.values):
            for label, value in rows:  # same rows: only the texts change
                _set_value(self.values[label], value)
            return
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.values = {}
        for r, (label, value) in enumerate(rows):
            name = QLabel(label)
            name.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
            val = QLabel()
            _set_value(val, value)
            val.setWordWrap(True)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.grid.addWidget(name, r, 0, Qt.AlignmentFlag.AlignTop)
            self.grid.addWidget(val, r, 1)
            self.values[label] = val


def _set_value(label: QLabel, value: str) -> None:
    """Keep a card a few lines tall: a long value is cut, and shown whole as the tooltip."""
    if len(value) > MAX_VALUE_CHARS:
        label.setText(value[:MAX_VALUE_CHARS - 1].rstrip() + "…")
        label.setToolTip(value)
    else:
        label.setText(value)
        label.setToolTip("")


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

        b = st.backend
        if b is None:
            self.backend.set_rows("Not checked yet", [], "idle")
        elif b.get("skipped"):
            self.backend.set_rows("Files only", [("Note", str(b.get("reason", "")))], "idle")
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
