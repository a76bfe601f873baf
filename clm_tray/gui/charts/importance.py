"""The overview's importance chart: every feature the champion uses, largest share on top."""

from __future__ import annotations

from typing import Any

from PySide6.QtCharts import QBarCategoryAxis, QBarSet, QHorizontalBarSeries, QValueAxis
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from clm_tray.gui.charts.axes import set_nice_range
from clm_tray.gui.charts.lazy_view import LazyChartView, new_chart

NO_MODEL = "(no model yet)"
EMPTY_IMPORTANCE = ("No model yet — click <b>Retrain now</b> to train the first one;<br>"
                    "the features it relies on most will be listed here.")


class ImportanceChart(LazyChartView):
    """All features, sorted, largest at the top (gain share of the champion)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(320)
        self.features: list[str] = []  # largest first
        chart = new_chart("")
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
