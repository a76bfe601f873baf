"""Is the champion still as accurate as its own test said? The live-performance check.

On labelled rows newer than its training data, the champion's accuracy (p >= 0.5), AUC and log
loss against the accuracy its out-of-time test measured. The verdict ``degraded`` needs enough
rows (QT_CLM_SHADOW_MIN) so that a handful of unlucky bars never pages anyone. The result is a
``PerformanceReport`` of plain numbers for history, events and ``--json``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from clm_tray.core.app.status import PerformanceReport
from clm_tray.core.app.wording import pct
from clm_tray.core.ml.metrics import roc_auc_score
from clm_tray.core.monitor.predictions import (
    Model,
    clipped_log_loss,
    labelled_rows,
    probabilities,
)


def live_performance(
    booster: Model,
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    test_accuracy: float,
    baseline: float,
    min_rows: int,
    max_drop: float,
    *,
    now: float | None = None,
) -> PerformanceReport:
    """The champion's accuracy (p >= 0.5), AUC and log loss on labelled rows it never saw.

    The caller passes the rows newer than the champion's training data. Figures are computed
    whenever there is a labelled row, but ``degraded`` is only decided with at least
    ``min_rows`` (QT_CLM_SHADOW_MIN) rows.
    """
    checked_at = time.time() if now is None else float(now)
    labelled, y = labelled_rows(frame, target)
    rows = int(y.size)
    accuracy = auc = loss = drop = None
    if rows:
        p = probabilities(booster, labelled, features)
        accuracy = float(np.mean((p >= 0.5).astype(np.int64) == y))
        auc = float(roc_auc_score(y, p)) if np.unique(y).size == 2 else None
        loss = clipped_log_loss(y, p)
        drop = float(test_accuracy) - accuracy
    enough = rows >= min_rows
    degraded = bool(enough and drop is not None and drop > max_drop)
    if not enough:
        reason = f"not enough new rows ({rows} < QT_CLM_SHADOW_MIN={min_rows})"
    elif degraded:
        reason = (f"live accuracy {pct(accuracy)} is {drop * 100:.1f} points below the test "
                  f"accuracy {pct(test_accuracy)} (allowed {max_drop * 100:.1f})")
    else:
        reason = (f"live accuracy {pct(accuracy)} vs test accuracy {pct(test_accuracy)} on "
                  f"{rows:,} rows")
    return PerformanceReport(
        rows=rows, accuracy=accuracy, auc=auc, log_loss=loss, test_accuracy=float(test_accuracy),
        baseline=float(baseline), drop=drop, degraded=degraded, enough=enough, reason=reason,
        checked_at=checked_at, min_rows=int(min_rows),
    )
