"""QtCharts views: feature importance and accuracy across versions.

Imported only when the dashboard first opens, so QtCharts never slows the tray's cold start.

Each view builds its QChart, series and axes once and afterwards only changes their values
in place: building a chart and laying it out for the first time costs tens of milliseconds
on the GUI thread, replacing 22 values does not. A view that is hidden (another tab is in
front) keeps what it was asked to show and draws it when it is shown again; a view asked to
show what it already shows does nothing.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCharts import (
    QAreaSeries,
    QBarCategoryAxis,
    QBarSet,
    QCategoryAxis,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QHorizontalStackedBarSeries,
    QLineSeries,
    QScatterSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QShowEvent
from PySide6.QtWidgets import QWidget

NO_MODEL = "(no model yet)"
EMPTY_IMPORTANCE = ("No model yet — click <b>Retrain now</b> to train the first one;<br>"
                    "the features it relies on most will be listed here.")
EMPTY_ACCURACY = ("No model yet — click <b>Retrain now</b> to train the first one;<br>"
                  "each version's accuracy will be drawn here.")


def nice_axis(lo: float, hi: float, target: int = 5) -> tuple[float, float, int, int]:
    """A range on round numbers around [lo, hi]: (low, high, tick count, decimals).

    Ticks fall on 1, 2, 2.5 or 5 times a power of ten, so an axis reads 0 / 5 / 10 / 15 %
    instead of 0 / 5.3 / 10.6 %.
    """
    if hi <= lo:
        hi = lo + 1.0
    span = hi - lo
    mag = 10 ** math.floor(math.log10(span / target))
    step = mag
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        if span / step <= target:
            break
    low, high = math.floor(lo / step) * step, math.ceil(hi / step) * step
    decimals = 0 if step >= 1 and float(step).is_integer() else max(
        1, -math.floor(math.log10(step)) + (1 if m == 2.5 else 0))
    return low, high, int(round((high - low) / step)) + 1, decimals


def set_nice_range(axis: QValueAxis, lo: float, hi: float, unit: str = "%") -> None:
    low, high, ticks, decimals = nice_axis(lo, hi)
    axis.setRange(low, high)
    axis.setTickCount(ticks)
    axis.setLabelFormat(f"%.{decimals}f" + (" %%" if unit == "%" else unit))


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
        self.axis_x.setTitleText("Share of what the model learned from each feature (%)")
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
        title = f"What model {version} relies on most" if version else "Feature importance"
        if not items:
            title = EMPTY_IMPORTANCE
        if chart.title() != title:
            chart.setTitle(title)
        for axis in (self.axis_x, self.axis_y):
            axis.setVisible(bool(items))
        values = [v * 100 for _, v in items]
        if self.bars.count() == len(values):
            for i, v in enumerate(values):
                if self.bars.at(i) != v:
                    self.bars.replace(i, v)
        else:
            self.bars.remove(0, self.bars.count())
            self.bars.append(values)
        set_nice_range(self.axis_x, 0.0, max(1.0, max(values, default=10.0)))
        return True


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


class AccuracyChart(_LazyChartView):
    """Test accuracy per version (marked by whether it was deployed, rolled back or never
    used), live accuracy where it was measured for that very version (points, never a line
    joining different models), and the always-guessing baseline as a shaded band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(260)
        self.points: dict[str, list[tuple[float, float]]] = {}
        chart = _chart("Accuracy across versions")
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


class DriftChart(_LazyChartView):
    """How far each feature's new data moved from training (PSI), with the alarm line."""

    TOP = 10  # features shown (the most moved); the table below lists all

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(220)
        chart = _chart("")
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

    def show_drift(self, drift: dict[str, Any] | None, empty_text: str = "") -> None:
        feats = sorted((drift or {}).get("features") or [],
                       key=lambda f: -(f.get("psi") or 0.0))[: self.TOP]
        items = tuple((str(f.get("feature")), float(f.get("psi") or 0.0), bool(f.get("over")))
                      for f in reversed(feats))  # ascending: the most moved is on top
        self.features = [name for name, _, _ in reversed(items)]
        threshold = float((drift or {}).get("threshold") or 0.0)
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
