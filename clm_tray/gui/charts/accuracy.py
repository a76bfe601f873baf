"""The overview's accuracy chart: each version's test accuracy, live accuracy where measured,
and the always-guessing baseline."""

from __future__ import annotations

from typing import Any

from PySide6.QtCharts import QAreaSeries, QCategoryAxis, QLineSeries, QScatterSeries, QValueAxis
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QWidget

from clm_tray.gui.charts.axes import set_nice_range
from clm_tray.gui.charts.lazy_view import LazyChartView, new_chart

EMPTY_ACCURACY = ("No model yet — click <b>Retrain now</b> to train the first one;<br>"
                  "each version's accuracy will be drawn here.")

# How a version's test accuracy is marked: whether it ever served predictions.
DEPLOYMENT_MARKS = (
    ("in use", "In use", "#2e9d4f", QScatterSeries.MarkerShape.MarkerShapeCircle, 13, True),
    ("deployed before", "Used before", "#2f6fd6",
     QScatterSeries.MarkerShape.MarkerShapeCircle, 9, True),
    ("rolled back", "Rolled back", "#d42a2a", QScatterSeries.MarkerShape.MarkerShapeTriangle,
     12, True),
    ("never deployed", "Never used", "#7a7f87",
     QScatterSeries.MarkerShape.MarkerShapeCircle, 9, False),
)


class AccuracyChart(LazyChartView):
    """Test accuracy per version (marked by whether it was deployed, rolled back or never
    used), live accuracy where it was measured for that very version (points, never a line
    joining different models), and the always-guessing baseline as a shaded band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(260)
        self.points: dict[str, list[tuple[float, float]]] = {}
        chart = new_chart("Accuracy across versions")
        self.axis_x = QCategoryAxis()
        self.axis_x.setTruncateLabels(False)
        self.axis_x.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
        self.axis_x.setTitleText("Model version (oldest → newest)")
        self.axis_y = QValueAxis()
        self.axis_y.setTitleText("Accuracy on unseen data (%)")
        # the baseline band: everything at or below always-guessing
        self.baseline = QLineSeries()
        self.band = QAreaSeries(self.baseline)
        self.band.setName("Always-guessing")
        self.band.setColor(QColor(122, 127, 135, 60))
        self.band.setBorderColor(QColor("#7a7f87"))
        chart.addSeries(self.band)
        self.test_line = QLineSeries()
        self.test_line.setName("Test")
        self.test_line.setPen(QPen(QColor("#2f6fd6"), 2.0))
        chart.addSeries(self.test_line)
        self.marks: dict[str, QScatterSeries] = {}
        for key, name, color, shape, size, filled in DEPLOYMENT_MARKS:
            dots = QScatterSeries()
            dots.setName(name)
            dots.setMarkerShape(shape)
            dots.setMarkerSize(size)
            dots.setColor(QColor(color) if filled else QColor("white"))
            dots.setBorderColor(QColor(color))
            self.marks[key] = dots
            chart.addSeries(dots)
        self.live = QScatterSeries()
        self.live.setName("Live")
        self.live.setMarkerShape(QScatterSeries.MarkerShape.MarkerShapeRectangle)
        self.live.setMarkerSize(10)
        self.live.setColor(QColor("#c98a00"))
        chart.addSeries(self.live)
        chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        for series in (self.band, self.test_line, self.live, *self.marks.values()):
            series.attachAxis(self.axis_x)
            series.attachAxis(self.axis_y)
        self.setChart(chart)
        self.show_history([])
        self.sync()

    def show_history(self, rows: list[dict[str, Any]]) -> None:
        labels = tuple(str(r.get("version", i)).split("-")[0] for i, r in enumerate(rows))
        keys = ("test_accuracy", "live_accuracy", "baseline")
        points = {key: tuple((float(i), float(r[key]) * 100) for i, r in enumerate(rows)
                             if isinstance(r.get(key), (int, float)))
                  for key in keys}
        kinds = tuple(str(r.get("deployment") or "never deployed") for r in rows)
        self.points = {k: list(v) for k, v in points.items()}
        self._want((labels, tuple(points.items()), kinds))

    def _draw(self, signature: Any) -> bool | None:
        labels, points, kinds = signature
        pts = dict(points)
        chart = self.chart()
        empty = not labels
        for axis in (self.axis_x, self.axis_y):
            axis.setVisible(not empty)
        chart.legend().setVisible(not empty)
        chart.setTitle(EMPTY_ACCURACY if empty else "Accuracy across versions")
        if tuple(self.axis_x.categoriesLabels()) != labels:
            for old in self.axis_x.categoriesLabels():
                self.axis_x.remove(old)
            for i, label in enumerate(labels):
                self.axis_x.append(label, float(i))
        self.axis_x.setRange(-0.5, max(0.5, len(labels) - 0.5))
        test = pts.get("test_accuracy", ())
        self.test_line.replace([QPointF(x, y) for x, y in test])
        for key, series in self.marks.items():
            series.replace([QPointF(x, y) for x, y in test
                            if int(x) < len(kinds) and kinds[int(x)] == key])
        self.live.replace([QPointF(x, y) for x, y in pts.get("live_accuracy", ())])
        for marker in chart.legend().markers():  # only what is drawn is explained
            series = marker.series()
            count = series.count() if hasattr(series, "count") else 1
            marker.setVisible(count > 0 or series is self.band)
        base = list(pts.get("baseline", ()))
        if base:  # a step band spanning each version's slot
            band = [QPointF(x + dx, y) for x, y in base for dx in (-0.5, 0.5)]
            self.baseline.replace(band)
        else:
            self.baseline.clear()
        values = [y for _, series in points for _, y in series]
        lo, hi = min(values, default=45.0), max(values, default=60.0)
        set_nice_range(self.axis_y, max(0.0, lo - 1.0), min(100.0, hi + 1.0))
        return True
