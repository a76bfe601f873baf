"""Judging a fitted model on its out-of-time test rows: metrics, baseline, leakage, importance.

Why one module for every trainer: the local, streamed and cluster trainers must be judged by
the same rules, or a model's numbers would depend on where it was trained. The test rows are
scored against the majority-class baseline, and an edge over that baseline that is too large
for next-bar direction prediction is flagged as probable leakage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost

from clm_tray.core.ml.edge import EdgeResult, edge_test
from clm_tray.core.ml.metrics import log_loss, roc_auc_score

#: An out-of-time ROC AUC above this is implausible for next-bar direction prediction.
AUC_LEAK = 0.75


def importance(booster: xgboost.Booster, features: list[str]) -> dict[str, float]:
    """Normalised "total_gain" per feature, in the training order; 0.0 for unused ones."""
    score = booster.get_score(importance_type="total_gain")  # keys f0, f1, ... (numpy input)
    raw = np.array([float(score.get(f"f{i}", 0.0)) for i in range(len(features))])
    total = raw.sum()
    shares = raw / total if total > 0 else raw
    return {name: float(v) for name, v in zip(features, shares, strict=True)}


def leakage(test_acc: float, baseline: float, auc: float, margin: float) -> tuple[bool, str]:
    """(flagged, one line why): an edge over the baseline above ``margin`` or an AUC above
    ``AUC_LEAK`` means a feature almost surely carries future information."""
    edge = test_acc - baseline
    if edge > margin:
        return True, (
            f"test accuracy {test_acc:.3f} beats the majority baseline {baseline:.3f} by "
            f"{edge:.3f} (> {margin:.2f}), implausible for next-bar direction; check features "
            "for future information"
        )
    if auc > AUC_LEAK:
        return True, (
            f"out-of-time ROC AUC {auc:.3f} is above {AUC_LEAK:.2f}, implausible for next-bar "
            "direction; check features for future information"
        )
    return False, (
        f"no sign of leakage: test accuracy {test_acc:.3f} is {edge:+.3f} over the baseline "
        f"{baseline:.3f} (limit {margin:.2f}) and AUC {auc:.3f} is at most {AUC_LEAK:.2f}"
    )


def score_out_of_time(y_test: np.ndarray, p_test: np.ndarray, ts_test: np.ndarray,
                      majority: int, leak_margin: float
                      ) -> tuple[dict[str, Any], bool, str, EdgeResult]:
    """The test-slice metrics, the leakage verdict and the edge gate's evidence, computed alike
    for every trainer (local or on a cluster): ``test_accuracy``, ``auc``, ``log_loss``,
    ``baseline_accuracy`` (always predicting the TRAIN slice's ``majority`` class) and
    ``test_rows``; then (leakage, reason) and the bar-by-bar edge test (edge.py; the cycle
    applies its limits). ``ts_test`` is each test row's time in ns."""
    y_test = np.asarray(y_test)
    p_test = np.asarray(p_test)
    hit = (p_test > 0.5) == (y_test == 1)
    baseline = float(np.mean(y_test == majority))
    test_acc = float(np.mean(hit))
    auc = float(roc_auc_score(y_test, p_test))
    leak, reason = leakage(test_acc, baseline, auc, leak_margin)
    edge = edge_test(hit, y_test == majority, np.asarray(ts_test),
                     majority_label="up" if majority else "down")
    metrics = {
        "test_accuracy": test_acc,
        "auc": auc,
        "log_loss": float(log_loss(y_test, p_test, labels=[0, 1])),
        "baseline_accuracy": baseline,
        "test_rows": int(y_test.size),
    }
    return metrics, leak, reason, edge
