"""The dashboard's "replay" view: would the retraining policy have paid on this data?

A Run button asks the engine for a replay (``Engine.replay``, run by the task runner; in the
tray it runs in the engine's worker process), the progress bar follows its
``replay.progress`` events and Cancel stops it between two trainings. The result is drawn as
realized accuracy per day (hourly data) or month (daily data) for the three policies and the
always-guess baseline, with a one-line verdict above the chart. The view computes nothing:
every figure comes from the engine's ``ReplayResult``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from PySide6.QtCharts import QChart, QChartView, QDateTimeAxis, QLineSeries, QValueAxis
from PySide6.QtCore import QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from clm_tray.core.app import events as ev
from clm_tray.core.app.wording import pct
from clm_tray.gui.taskrunner import Op, describe_error

# (policy name, legend text, colour, pen style); "baseline" is the always-guess line
LINES = (("configured", "Your policy", "#2f6fd6", Qt.PenStyle.SolidLine),
         ("never", "Never retrain", "#d9822b", Qt.PenStyle.SolidLine),
         ("always", "Always retrain", "#2e9d4f", Qt.PenStyle.SolidLine),
         ("baseline", "Always guessing", "#7a7f87", Qt.PenStyle.DashLine))
INTRO = ("Replays your data's history as if clm-tray had been running: your retraining "
         "policy, never retraining and always retraining, each scored on the rows that "
         "arrived after its deploys. Nothing is deployed or saved.")


class ReplayView(QWidget):
    """Run / progress / Cancel, a verdict line, and the accuracy-over-time chart."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.result: Any = None
        self._cancel: threading.Event | None = None

        layout = QVBoxLayout(self)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run replay")
        self.run_button.clicked.connect(self.run)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("Not run yet.")
        row.addWidget(self.run_button)
        row.addWidget(self.progress_bar, 2)
        row.addWidget(self.cancel_button)
        row.addWidget(self.status, 3)
        layout.addLayout(row)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.verdict)

        chart = QChart()
        chart.setTitle("Realized accuracy")
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.axis_x = QDateTimeAxis()
        self.axis_x.setFormat("MMM d")
        self.axis_y = QValueAxis()
        self.axis_y.setLabelFormat("%.0f %%")
        self.axis_y.setRange(40.0, 65.0)
        self.axis_x.setVisible(False)  # no dates to show before the first run
        chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        self.series: dict[str, QLineSeries] = {}
        for key, name, color, style in LINES:
            line = QLineSeries()
            line.setName(name)
            pen = QPen(QColor(color), 2.0)
            pen.setStyle(style)
            line.setPen(pen)
            chart.addSeries(line)
            line.attachAxis(self.axis_x)
            line.attachAxis(self.axis_y)
            self.series[key] = line
        self.chart_view = QChartView(chart)
        self.chart_view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.chart_view.setMinimumHeight(300)
        layout.addWidget(self.chart_view, 1)

        controller.runner.bind("replay", self.run_button)
        controller.bridge.event.connect(self._on_event)

    # ---- actions ------------------------------------------------------------------------
    def run(self) -> bool:
        engine = self.controller.engine
        if engine is None:
            self.status.setText("The engine is still starting; try again in a moment.")
            return False
        cancel = threading.Event()
        started = Op(lambda: engine.replay(None, cancel=cancel), key="replay",
                     label="Replay").success(self.show_result).failure(self._failed) \
            .then(self._ended).run(self.controller.runner)
        if started:
            self._cancel = cancel
            self.cancel_button.setEnabled(True)
            self.progress_bar.setValue(0)
            self.status.setText("Replaying… (the first model is being trained)")
        return started

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.status.setText("Cancelling after the current training…")
            self.cancel_button.setEnabled(False)

    def _ended(self) -> None:
        self._cancel = None
        self.cancel_button.setEnabled(False)

    def _failed(self, exc: BaseException) -> None:
        cancelled = self._cancel is not None and self._cancel.is_set()
        self.status.setText("Replay cancelled; nothing was changed." if cancelled
                            else f"Replay failed: {describe_error(exc)}")

    def _on_event(self, event: ev.Event) -> None:
        p = event.payload
        if not isinstance(p, ev.ReplayProgress) or self._cancel is None:
            return
        self.progress_bar.setValue(int(round(p.progress * 100)))
        self.status.setText(f"Replaying… {p.message}")

    # ---- the result ---------------------------------------------------------------------
    def show_result(self, result: Any) -> None:
        """Draw the engine's ReplayResult: one point per period for each line."""
        self.result = result
        self.progress_bar.setValue(100)
        cfg, never = result.policy("configured"), result.policy("never")
        self.status.setText(f"Replayed {result.rows:,} rows, {result.trainings} models trained "
                            f"in {result.seconds:.0f} s.")
        gain = (cfg.accuracy - never.accuracy) * 100
        self.verdict.setText(
            f"Your policy: {pct(cfg.accuracy)} ({cfg.retrains} retrains after the first "
            f"model, {cfg.deploys} deployed; {cfg.gated} candidates had no edge, "
            f"{cfg.rejected} were rejected) — never retraining "
            f"{pct(never.accuracy)}, always retraining {pct(result.policy('always').accuracy)}"
            f", {result.baseline_label} {pct(result.baseline_accuracy)}. Retraining as "
            f"configured {'paid' if gain > 0 else 'did not pay'}: {gain:+.1f} points.")
        times = [datetime.fromisoformat(p.start).timestamp() * 1000 for p in cfg.periods]
        values: list[float] = []
        for key, *_rest in LINES:
            periods = cfg.periods if key == "baseline" else result.policy(key).periods
            ys = [(p.baseline if key == "baseline" else p.accuracy) * 100 for p in periods]
            self.series[key].replace([QPointF(t, y) for t, y in zip(times, ys, strict=True)])
            values += ys
        if times:
            self.axis_x.setVisible(True)
            self.axis_x.setRange(datetime.fromtimestamp(times[0] / 1000),
                                 datetime.fromtimestamp(max(times[-1], times[0] + 1) / 1000))
            self.axis_x.setFormat("MMM d" if result.period == "day" else "MMM yyyy")
            lo, hi = min(values), max(values)
            self.axis_y.setRange(max(0.0, lo - 2), min(100.0, hi + 2))
