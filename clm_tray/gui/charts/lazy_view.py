"""What every dashboard chart shares: it draws only while visible, and in parts.

Each view builds its QChart, series and axes once and afterwards only changes their values
in place: building a chart and laying it out for the first time costs tens of milliseconds
on the GUI thread, replacing 22 values does not. A view that is hidden (another tab is in
front) keeps what it was asked to show and draws it when it is shown again; a view asked to
show what it already shows does nothing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCharts import QChart, QChartView
from PySide6.QtCore import QMargins, Qt, QTimer
from PySide6.QtGui import QPainter, QShowEvent
from PySide6.QtWidgets import QWidget


def new_chart(title: str) -> QChart:
    """A chart as every view starts it: no animation, small margins, legend below."""
    chart = QChart()
    chart.setTitle(title)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setMargins(QMargins(4, 4, 4, 4))
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    return chart


class LazyChartView(QChartView):
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
