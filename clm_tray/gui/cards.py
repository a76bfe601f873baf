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

from clm_tray.core.app.status import BackendUnknown, Health, JobState
from clm_tray.core.app.wording import clock, latency, pct
from clm_tray.gui.snapshot import Snapshot

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

    def set_rows(self, headline: str, rows: list[tuple[str, str]], tone: str,
                 tips: dict[str, str] | None = None) -> None:
        """Show these rows; ``tips`` are details (figures, reasons) shown on hover only."""
        tips = {k: v for k, v in (tips or {}).items() if v}
        if self._shown == (headline, rows, tone, tips):
            return
        self._shown = (headline, list(rows), tone, dict(tips))
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
            _set_value(val, value, tips.get(label, ""))
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


def _set_value(label: QLabel, value: str, detail: str = "") -> None:
    """Keep a card a few lines tall: a long value is cut, and shown whole as the tooltip
    (with its details, if any)."""
    text, tip = value, detail
    if len(value) > MAX_VALUE_CHARS:
        text = value[:MAX_VALUE_CHARS - 1].rstrip() + "…"
        tip = value + (f"\n\n{detail}" if detail else "")
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
        st, f = snap.status, snap.facts
        champ = st.champion
        data = [("Data", _data_text(st))] if _data_text(st) else []
        new = [("New data", f.new_rows)] if f.new_rows else []
        if champ is None:
            self.model.set_rows("No model yet", data + new, "warn")
        else:
            self.model.set_rows(champ.id, [
                ("Age", f"{f.age} (retrained after {st.retrain_hours:g} h)"),
                ("Trained", champ.trained_at.replace("T", " ")[:16]),
                *data, *new,
                ("Challenger", st.challenger.id if st.challenger else "none"),
            ], "ok" if st.fresh else "warn")

    def show_quality(self, snap: Snapshot) -> None:
        st, f = snap.status, snap.facts
        champ = st.champion
        # Live and drift are whole sentences that name themselves: no row label.
        if champ is None:
            self.quality.set_rows("–", [(LIVE, f.live)], "idle")
            return
        tone = "bad" if f.live_bad else ("warn" if champ.leakage or f.drift_bad else "ok")
        self.quality.set_rows(f.test, [
            ("Always-guessing", pct(champ.baseline)),
            (LIVE, f.live),
            (DRIFT, f.drift),
        ], tone, tips={LIVE: f.live_detail, DRIFT: f.drift_detail,
                       "Always-guessing": "accuracy of always predicting the most common "
                                          "outcome of the training data (the baseline)"})

    def show_backend(self, snap: Snapshot) -> None:
        b, f = snap.status.backend, snap.facts
        if isinstance(b, BackendUnknown):  # the deploy folder changed after the last check
            self.backend.set_rows(f.backend, [("Why", b.reason)], "idle",
                                  tips={"Why": f.backend_detail})
            return
        if b is None or b.skipped:
            rows = [("Note", "no backend is set up; only the model files are installed")] \
                if b else []
            self.backend.set_rows(f.backend, rows, "idle", tips={"Note": f.backend_detail})
            return
        self.backend.set_rows(f.backend, [
            ("Answers in", latency(b.latency_ms)),
            ("Serving", str(b.reported_version or (b.reported_sha256 or "?")[:12])),
            ("Address", b.url),
            ("Checked", clock(b.checked_at)),
        ] + ([] if b.ok else [("Why", b.reason)]),
            ("warn" if "not reported" in f.backend else "ok") if b.ok else "bad",
            tips={"Why": f.backend_detail, "Serving": f.backend_detail})

    def show_scheduler(self, snap: Snapshot) -> None:
        st = snap.status
        sc = st.scheduler
        # Only when each check runs: their findings are on the other cards, said once.
        rows = [(JOB_NAMES.get(j.name, j.name), _job_times(j)) for j in sc.jobs
                if j.name in JOB_NAMES]
        if sc.paused:
            until = f" until {clock(sc.paused_until)}" if sc.paused_until else ""
            head, tone = f"Paused{until}", "idle"
            rows.insert(0, ("Why", sc.paused_reason))
        elif not sc.enabled:
            head, tone = "Switched off", "idle"
        elif sc.cycle_stage:
            head, tone = "Working", "busy"
        elif sc.running:
            head, tone = "Running", "ok" if st.health == Health.HEALTHY else "warn"
        else:
            head, tone = "Not running", "warn"
            if not rows:
                rows.append(("Checks", "run by the tray app or clm-tray run"))
        if sc.backoff_until:
            rows.append(("Waiting", f"until {clock(sc.backoff_until)}"))
        if sc.retrain_due:
            rows.append(("Due", "a retrain is due (automatic retraining is off)"))
        self.scheduler.set_rows(head, rows, tone, tips={
            "Waiting": sc.backoff_reason, "Due": sc.retrain_due})


LIVE, DRIFT = "\u200b", "\u200b\u200b"  # rows without a visible label (keys stay unique)
JOB_NAMES = {"age": "Model & backend", "drift": "Drift", "performance": "Live accuracy"}


def _job_times(job: JobState) -> str:
    last = clock(job.last_run)
    nxt = clock(job.next_run)
    return " · ".join(p for p in (f"next {nxt}" if nxt else "",
                                  f"last {last}" if last else "") if p) or "–"


def _data_text(st: object) -> str:
    rows = getattr(st, "data_rows", None)
    symbols = getattr(st, "data_symbols", None)
    if rows is None:
        return ""  # the engine did not say; the row is left out
    return f"{rows:,} rows" + (f" · {symbols} symbols" if symbols else "")
