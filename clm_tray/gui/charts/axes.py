"""Axis ranges on round numbers, so a chart reads 0 / 5 / 10 / 15 % and not 0 / 5.3 / 10.6 %."""

from __future__ import annotations

import math

from PySide6.QtCharts import QValueAxis


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
