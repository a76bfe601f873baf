"""The edge gate: does a candidate beat guessing, by more than luck, on its out-of-time test?

A trading model is only worth deploying when it is right more often than the cheapest rival:
always guessing the majority class of the test rows, or a coin flip (50 %), whichever is
better. "More often" must survive the fact that rows are not independent: all symbols in one
bar move together, and neighbouring bars share regimes. So the test works on bars, not rows:

1. Per row, the candidate's correctness minus the baseline's (the majority guess's
   correctness, or the constant 0.5 for a coin flip).
2. Rows sharing a timestamp are summed into one value per bar and scaled by the mean number
   of rows per bar, ``d_t = sum_i(c_i - b_i) / (N / T)``. This weights bars by their row
   count, so ``mean(d_t)`` is exactly the row-level accuracy edge that users see, while any
   dependence between symbols inside a bar stays inside one number.
3. A one-sided Diebold-Mariano test (Diebold & Mariano 1995, "Comparing Predictive
   Accuracy", JBES 13(3)) of ``mean(d_t) > 0`` with a Newey-West long-run variance (Newey &
   West 1987, Econometrica 55(3)): Bartlett weights, bandwidth
   ``L = floor(4 * (T / 100) ** (2 / 9))`` — the usual rule of thumb — capped at ``T - 1``.
   The statistic is compared with the standard normal.

Numpy only (imported when a test runs, so the tray's light process can read an
EdgeResult without it) and Qt-free: training runs it in the child; the replay reuses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from clm_tray.core.app.wording import pct

if TYPE_CHECKING:  # numpy is imported where the test runs, so the tray's process never needs it
    import numpy as np


@dataclass(frozen=True)
class EdgeResult:
    """The gate's verdict on one candidate, with the one plain sentence that explains it."""

    accuracy: float  # candidate accuracy on the test rows (fraction)
    baseline: float  # max(majority-class accuracy on these rows, 0.5)
    baseline_label: str  # plain words: "always guessing 'down'" or "a coin flip"
    edge: float  # accuracy - baseline (fraction)
    p_value: float  # one-sided, H1: accuracy > baseline
    bars: int  # number of distinct timestamps used
    passed: bool  # p_value < p_max and edge * 100 >= min_edge_points
    reason: str  # one plain sentence, e.g. "49.7 % vs 51.5 % by always guessing 'down'"
    rows: int = 0  # test rows behind the figures
    bandwidth: int = 0  # Newey-West lags used
    statistic: float | None = None  # Diebold-Mariano statistic (logs only); None: no variance

    def judged(self, p_max: float, min_edge_points: float) -> EdgeResult:
        """The same evidence under other limits: the p-value does not depend on them, so
        training computes it once and the cycle applies the user's current settings."""
        return replace(self, passed=_passes(self.p_value, self.edge, p_max, min_edge_points))


def _passes(p_value: float, edge: float, p_max: float, min_edge_points: float) -> bool:
    # A tiny tolerance: an edge of exactly N points must count as N points.
    return bool(p_value < p_max and edge * 100.0 >= min_edge_points - 1e-9)


def newey_west_bandwidth(bars: int) -> int:
    """Lags for the long-run variance: ``floor(4 (T/100)^(2/9))``, at most ``T - 1``."""
    if bars < 2:
        return 0
    return max(0, min(bars - 1, int(math.floor(4.0 * (bars / 100.0) ** (2.0 / 9.0)))))


def long_run_variance(d: np.ndarray, lags: int) -> float:
    """Newey-West (Bartlett-weighted) long-run variance of a series around its mean.

    Bartlett weights keep the estimate non-negative, which a one-sided test needs.
    """
    import numpy as np

    x = np.asarray(d, dtype=float) - float(np.mean(d))
    n = len(x)
    var = float(np.dot(x, x)) / n
    for k in range(1, lags + 1):
        weight = 1.0 - k / (lags + 1.0)
        var += 2.0 * weight * float(np.dot(x[k:], x[:-k])) / n
    return max(var, 0.0)


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def edge_test(correct: np.ndarray, majority_correct: np.ndarray, timestamps: np.ndarray, *,
              majority_label: str, p_max: float = 0.05,
              min_edge_points: float = 0.0) -> EdgeResult:
    """Judge a candidate against the better of the majority guess and a coin flip.

    ``correct`` and ``majority_correct`` are per-row booleans (the candidate's and the
    always-guess-``majority_label`` prediction's correctness on the test rows); ``timestamps``
    says which bar each row belongs to (any sortable values). See the module docstring for
    the test and its references.
    """
    import numpy as np

    c = np.asarray(correct, dtype=float).ravel()
    m = np.asarray(majority_correct, dtype=float).ravel()
    ts = np.asarray(timestamps).ravel()
    if not (len(c) == len(m) == len(ts)):
        raise ValueError("correct, majority_correct and timestamps must have the same length")
    rows = len(c)
    if rows == 0:
        return EdgeResult(accuracy=0.0, baseline=0.5, baseline_label="a coin flip", edge=-0.5,
                          p_value=1.0, bars=0, passed=False,
                          reason="there were no test rows to judge the model on")

    accuracy = float(c.mean())
    majority_acc = float(m.mean())
    if majority_acc > 0.5:
        baseline, label, per_row = majority_acc, f"always guessing '{majority_label}'", m
    else:
        baseline, label, per_row = 0.5, "a coin flip", np.full(rows, 0.5)

    _, bar_of_row = np.unique(ts, return_inverse=True)
    bars = int(bar_of_row.max()) + 1
    per_bar = np.bincount(bar_of_row.ravel(), weights=c - per_row, minlength=bars)
    d = per_bar / (rows / bars)
    edge = float(d.mean())  # equals accuracy - baseline up to rounding

    lags = newey_west_bandwidth(bars)
    statistic: float | None = None
    p_value = 1.0
    if bars >= 2:
        lrv = long_run_variance(d, lags)
        if lrv > 0:
            statistic = edge / math.sqrt(lrv / bars)
            p_value = _normal_sf(statistic)
        elif edge > 0:  # every bar gains exactly the same: no doubt left
            p_value = 0.0

    passed = _passes(p_value, edge, p_max, min_edge_points)
    reason = f"{pct(accuracy)} vs {pct(baseline)} by {label}"
    return EdgeResult(accuracy=accuracy, baseline=baseline, baseline_label=label,
                      edge=accuracy - baseline, p_value=float(p_value), bars=bars,
                      passed=passed, reason=reason, rows=rows, bandwidth=lags,
                      statistic=statistic)
