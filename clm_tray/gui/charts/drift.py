"""The drift tab's chart: the features whose new data moved most since training, and the alarm
line."""

from __future__ import annotations

from typing import Any

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSet,
    QHorizontalStackedBarSeries,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QWidget

from clm_tray.core.app.status import DriftReport
from clm_tray.gui.charts.axes import set_nice_range
from clm_tray.gui.charts.lazy_view import LazyChartView, new_chart


class DriftChart(LazyChartView):
    """How far each feature's new data moved from training (PSI), with the alarm line."""

    TOP = 10  # features shown (the most moved); the table below lists all

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(220)
        chart = new_chart("")
        self.bars = QBarSet("PSI")
        self.bars.setColor(QColor("#2f6fd6"))
        self.over = QBarSet("Above the alarm level")
        self.over.setColor(QColor("#d42a2a"))
        self.series = QHorizontalStackedBarSeries()  # one of the two sets is 0 per feature
        self.series.append(self.bars)
        self.series.append(self.over)
        self.series.setBarWidth(0.8)
        chart.addSeries(self.series)
        self.axis_y = QBarCategoryAxis()
        self.axis_y.setTruncateLabels(False)
        chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.axis_y)
        self.axis_x = QValueAxis()
        self.axis_x.setTitleText("Change since training (PSI per feature)")
        chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        self.series.attachAxis(self.axis_x)
        # the alarm line: a vertical line on its own hidden 0..1 axis
        self.line_axis = QValueAxis()
        self.line_axis.setRange(0, 1)
        self.line_axis.setVisible(False)
        chart.addAxis(self.line_axis, Qt.AlignmentFlag.AlignRight)
        self.threshold = QLineSeries()
        self.threshold.setName("Alarm level")
        pen = QPen(QColor("#d42a2a"), 2.0)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.threshold.setPen(pen)
        chart.addSeries(self.threshold)
        self.threshold.attachAxis(self.axis_x)
        self.threshold.attachAxis(self.line_axis)
        self.setChart(chart)
        self.features: list[str] = []
        self.show_drift(None)
        self.sync()

    def show_drift(self, drift: DriftReport | None, empty_text: str = "") -> None:
        feats = sorted(drift.features if drift else [], key=lambda f: -f.psi)[: self.TOP]
        items = tuple((f.feature, float(f.psi), f.over)
                      for f in reversed(feats))  # ascending: the most moved is on top
        self.features = [name for name, _, _ in reversed(items)]
        threshold = float(drift.threshold) if drift else 0.0
        self._want((items, threshold, empty_text))

    def _draw(self, signature: Any) -> bool | None:
        items, threshold, empty_text = signature
        chart = self.chart()
        empty = not items
        for axis in (self.axis_x, self.axis_y):
            axis.setVisible(not empty)
        chart.legend().setVisible(not empty)
        chart.setTitle((empty_text or "No drift measured yet.") if empty else
                       f"The {len(items)} features that moved most since training")
        names = [n for n, _, _ in items] or [""]
        if self.axis_y.categories() != names:
            self.axis_y.setCategories(names)
        self.bars.remove(0, self.bars.count())
        self.over.remove(0, self.over.count())
        self.bars.append([0.0 if o else v for _, v, o in items])
        self.over.append([v if o else 0.0 for _, v, o in items])
        top = max([v for _, v, _ in items] + [threshold * 1.2, 0.05])
        set_nice_range(self.axis_x, 0.0, top, unit="")
        self.threshold.replace([QPointF(threshold, 0.0), QPointF(threshold, 1.0)]
                               if threshold and not empty else [])
        return True
