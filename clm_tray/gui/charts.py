"""QtCharts views: feature importance and accuracy across versions.

Imported only when the dashboard first opens, so QtCharts never slows the tray's cold start.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSet,
    QCategoryAxis,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QLineSeries,
    QScatterSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget


def _chart(title: str) -> QChart:
    chart = QChart()
    chart.setTitle(title)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setMargins(QMargins(4, 4, 4, 4))
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    return chart


class ImportanceChart(QChartView):
    """All features, sorted, largest at the top (gain share of the champion)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(320)
        self.features: list[str] = []
        self._shown: object = None
        self.show_importance({})

    def show_importance(self, importance: dict[str, float], version: str = "") -> None:
        if self._shown == (importance, version):
            return  # unchanged: rebuilding and repainting a chart costs ~50 ms
        self._shown = (dict(importance), version)
        chart = _chart(f"Feature importance{' — ' + version if version else ''} (gain)")
        items = sorted(importance.items(), key=lambda kv: kv[1])  # ascending: biggest on top
        self.features = [k for k, _ in reversed(items)]
        bars = QBarSet("importance")
        bars.setColor(QColor("#2f6fd6"))
        for _, v in items:
            bars.append(float(v) * 100)
        series = QHorizontalBarSeries()
        series.append(bars)
        series.setBarWidth(0.8)
        chart.addSeries(series)
        axis_y = QBarCategoryAxis()
        axis_y.setTruncateLabels(False)  # else names become "…" when first laid out small
        axis_y.append([k for k, _ in items] or ["(no model yet)"])
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(axis_y)
        axis_x = QValueAxis()
        top = max((v for _, v in items), default=0.1) * 100
        axis_x.setRange(0, max(1.0, top * 1.1))
        axis_x.setLabelFormat("%.0f %%")
        axis_x.setTickCount(5)
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_x)
        chart.legend().hide()
        self.setChart(chart)


class AccuracyChart(QChartView):
    """Test accuracy, live accuracy and the majority baseline, one point per version."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(260)
        self.points: dict[str, list[tuple[float, float]]] = {}
        self._shown: object = None
        self.show_history([])

    def show_history(self, rows: list[dict[str, Any]]) -> None:
        if self._shown == rows:
            return
        self._shown = [dict(r) for r in rows]
        chart = _chart("Accuracy across versions")
        specs = (("test_accuracy", "Test", "#2f6fd6", Qt.PenStyle.SolidLine),
                 ("live_accuracy", "Live", "#2e9d4f", Qt.PenStyle.SolidLine),
                 ("baseline", "Baseline", "#7a7f87", Qt.PenStyle.DashLine))
        values: list[float] = []
        self.points = {}
        series_list = []
        for key, name, color, style in specs:
            pts = [(float(i), float(r[key]) * 100) for i, r in enumerate(rows)
                   if isinstance(r.get(key), (int, float))]
            self.points[key] = pts
            line = QLineSeries()
            line.setName(name)
            pen = QPen(QColor(color), 2.2)
            pen.setStyle(style)
            line.setPen(pen)
            dots = QScatterSeries()
            dots.setColor(QColor(color))
            dots.setMarkerSize(7)
            dots.setBorderColor(QColor(color))
            for x, y in pts:
                line.append(x, y)
                dots.append(x, y)
                values.append(y)
            series_list += [line, dots]
        for s in series_list:
            chart.addSeries(s)
        for m in chart.legend().markers():
            if isinstance(m.series(), QScatterSeries):
                m.setVisible(False)
        axis_x = QCategoryAxis()
        axis_x.setTruncateLabels(False)
        axis_x.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
        for i, r in enumerate(rows):
            axis_x.append(str(r.get("version", i)).split("-")[0], float(i))
        axis_x.setRange(-0.5, max(0.5, len(rows) - 0.5))
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        axis_y = QValueAxis()
        lo = min(values, default=45.0)
        hi = max(values, default=60.0)
        pad = max(1.0, (hi - lo) * 0.15)
        axis_y.setRange(max(0.0, lo - pad), min(100.0, hi + pad))
        axis_y.setLabelFormat("%.1f %%")
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        for s in series_list:
            s.attachAxis(axis_x)
            s.attachAxis(axis_y)
        self.setChart(chart)
