"""QtCharts views: feature importance and accuracy across versions.

Imported only when the dashboard first opens, so QtCharts never slows the tray's cold start.

Each view builds its QChart, series and axes once and afterwards only changes their values
in place: building a chart and laying it out for the first time costs tens of milliseconds
on the GUI thread, replacing 22 values does not. A view that is hidden (another tab is in
front) keeps what it was asked to show and draws it when it is shown again; a view asked to
show what it already shows does nothing.
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
from PySide6.QtCore import QMargins, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QShowEvent
from PySide6.QtWidgets import QWidget

NO_MODEL = "(no model yet)"


def _chart(title: str) -> QChart:
    chart = QChart()
    chart.setTitle(title)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setMargins(QMargins(4, 4, 4, 4))
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    return chart


class _LazyChartView(QChartView):
    """Remembers what to show and draws it only while visible, in parts if need be.

    ``_draw`` may do part of the work and ask for another event-loop turn (returning False);
    the viewport does not repaint in between, so no half-updated chart is ever seen. With
    ``auto`` (the default) the view schedules those turns itself; a caller that sets
    ``auto = False`` drives it by calling ``step()`` once per turn until it returns True.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.auto = True
        self._wanted: object = None  # the data to show, as a small comparable signature
        self._drawn: object = ()  # what the chart shows now (never equal to a signature)
        self._step_timer = QTimer(self, singleShot=True, interval=0)
        self._step_timer.timeout.connect(self._auto_step)

    def _want(self, signature: object) -> None:
        self._wanted = signature
        if self.auto and self.isVisible():
            self._auto_step()

    def _auto_step(self) -> None:
        if not self.step():
            self._step_timer.start()

    @property
    def stale(self) -> bool:
        return self._wanted != self._drawn

    def step(self) -> bool:
        """Draw one part of what is wanted; True once the chart is up to date.

        Hidden views draw nothing here (True): they catch up when shown.
        """
        self._step_timer.stop()
        if not self.stale or not self.isVisible():
            return True
        return self._step()

    def sync(self) -> None:
        """Bring the chart up to date now, all parts in one go."""
        self._step_timer.stop()
        while self.stale and not self._step():
            pass

    def _step(self) -> bool:
        wanted = self._wanted
        if self._draw(wanted) is False:
            self.viewport().setUpdatesEnabled(False)  # no half-drawn frame
            return False
        self._drawn = wanted
        if not self.viewport().updatesEnabled():
            self.viewport().setUpdatesEnabled(True)
        return True

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        # a tab brought to the front: draw what arrived while it was hidden, all of it now
        # (the whole view is painted next anyway)
        self.sync()
        super().showEvent(event)

    def _draw(self, signature: Any) -> bool | None:
        raise NotImplementedError


class ImportanceChart(_LazyChartView):
    """All features, sorted, largest at the top (gain share of the champion)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(320)
        self.features: list[str] = []  # largest first
        chart = _chart("")
        self.bars = QBarSet("importance")
        self.bars.setColor(QColor("#2f6fd6"))
        self.series = QHorizontalBarSeries()
        self.series.append(self.bars)
        self.series.setBarWidth(0.8)
        chart.addSeries(self.series)
        self.axis_y = QBarCategoryAxis()
        self.axis_y.setTruncateLabels(False)  # else names become "…" when first laid out small
        chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        self.series.attachAxis(self.axis_y)
        self.axis_x = QValueAxis()
        self.axis_x.setLabelFormat("%.0f %%")
        self.axis_x.setTickCount(5)
        chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        self.series.attachAxis(self.axis_x)
        chart.legend().hide()
        self.setChart(chart)
        self.show_importance({})
        self.sync()  # the empty chart, drawn once while the view is still hidden

    def show_importance(self, importance: dict[str, float], version: str = "") -> None:
        items = sorted(((str(k), float(v)) for k, v in importance.items()),
                       key=lambda kv: kv[1])  # ascending: the biggest is drawn on top
        self.features = [k for k, _ in reversed(items)]
        self._want((tuple(items), version))

    def _draw(self, signature: Any) -> bool | None:
        items, version = signature
        chart = self.chart()
        names = [k for k, _ in items] or [NO_MODEL]
        if self.axis_y.categories() != names:
            # new names or a new order: laying out 22 axis labels is the costly part, so
            # it gets an event-loop turn of its own and the bars follow in the next one
            self.axis_y.setCategories(names)
            return False
        title = f"Feature importance{' — ' + version if version else ''} (gain)"
        if chart.title() != title:
            chart.setTitle(title)
        values = [v * 100 for _, v in items]
        if self.bars.count() == len(values):
            for i, v in enumerate(values):
                if self.bars.at(i) != v:
                    self.bars.replace(i, v)
        else:
            self.bars.remove(0, self.bars.count())
            self.bars.append(values)
        top = max(values, default=10.0)
        self.axis_x.setRange(0, max(1.0, top * 1.1))
        return True


ACCURACY_SERIES = (("test_accuracy", "Test", "#2f6fd6", Qt.PenStyle.SolidLine),
                   ("live_accuracy", "Live", "#2e9d4f", Qt.PenStyle.SolidLine),
                   ("baseline", "Baseline", "#7a7f87", Qt.PenStyle.DashLine))


class AccuracyChart(_LazyChartView):
    """Test accuracy, live accuracy and the majority baseline, one point per version."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(260)
        self.points: dict[str, list[tuple[float, float]]] = {}
        chart = _chart("Accuracy across versions")
        self.axis_x = QCategoryAxis()
        self.axis_x.setTruncateLabels(False)
        self.axis_x.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
        self.axis_y = QValueAxis()
        self.axis_y.setLabelFormat("%.1f %%")
        self.lines: dict[str, QLineSeries] = {}
        self.dots: dict[str, QScatterSeries] = {}
        for key, name, color, style in ACCURACY_SERIES:
            line = QLineSeries()
            line.setName(name)
            pen = QPen(QColor(color), 2.2)
            pen.setStyle(style)
            line.setPen(pen)
            dots = QScatterSeries()
            dots.setColor(QColor(color))
            dots.setMarkerSize(7)
            dots.setBorderColor(QColor(color))
            self.lines[key], self.dots[key] = line, dots
            chart.addSeries(line)
            chart.addSeries(dots)
        for m in chart.legend().markers():
            if isinstance(m.series(), QScatterSeries):
                m.setVisible(False)
        chart.addAxis(self.axis_x, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.axis_y, Qt.AlignmentFlag.AlignLeft)
        for s in (*self.lines.values(), *self.dots.values()):
            s.attachAxis(self.axis_x)
            s.attachAxis(self.axis_y)
        self.setChart(chart)
        self.show_history([])
        self.sync()

    def show_history(self, rows: list[dict[str, Any]]) -> None:
        labels = tuple(str(r.get("version", i)).split("-")[0] for i, r in enumerate(rows))
        points = {key: tuple((float(i), float(r[key]) * 100) for i, r in enumerate(rows)
                             if isinstance(r.get(key), (int, float)))
                  for key, *_ in ACCURACY_SERIES}
        self.points = {k: list(v) for k, v in points.items()}
        self._want((labels, tuple(points.items())))

    def _draw(self, signature: Any) -> bool | None:
        labels, points = signature
        if tuple(self.axis_x.categoriesLabels()) != labels:
            for old in self.axis_x.categoriesLabels():
                self.axis_x.remove(old)
            for i, label in enumerate(labels):
                self.axis_x.append(label, float(i))
        self.axis_x.setRange(-0.5, max(0.5, len(labels) - 0.5))
        values = []
        for key, pts in points:
            qpts = [QPointF(x, y) for x, y in pts]
            self.lines[key].replace(qpts)
            self.dots[key].replace(qpts)
            values += [y for _, y in pts]
        lo = min(values, default=45.0)
        hi = max(values, default=60.0)
        pad = max(1.0, (hi - lo) * 0.15)
        self.axis_y.setRange(max(0.0, lo - pad), min(100.0, hi + pad))
        return True
