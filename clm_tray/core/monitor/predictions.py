"""Scoring new rows with a model: what the live-performance check and the shadow test share.

A model is an XGBoost Booster or any callable ``fn(frame, features) -> P(target = 1)``; both
checks turn it into probabilities on labelled rows newer than its training data, so the rules
for reading those rows (the model's own feature columns, the best iteration after early
stopping, rows without a label left out) live here once. The column check is the one every
monitor check uses, drift included: a missing feature is one sentence, never a KeyError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pandas as pd

from clm_tray.core.errors import DataError
from clm_tray.core.ml.metrics import log_loss

if TYPE_CHECKING:  # imported when a Booster is scored: a cycle's drift profile needs none
    import xgboost as xgb

# A model is an xgboost Booster or any callable ``fn(frame, features) -> P(target = 1)``
# (for example ``functools.partial(training.predict_proba, booster)``).
Model: TypeAlias = "xgb.Booster | Callable[[pd.DataFrame, list[str]], np.ndarray]"


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """One DataError naming the model's feature columns that ``frame`` lacks, if any."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"The {what} lacks the model's feature column(s) {shown}; "
            "restore them or retrain on the new columns."
        )


def probabilities(model: Model, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """P(target = 1) per row from a Booster or a callable ``fn(frame, features)``.

    A Booster that knows its feature names reads those columns (so a champion and a candidate
    with different feature sets can be compared); otherwise ``features``, in that order. A
    Booster saved after early stopping predicts with its best iteration only, as
    ``XGBClassifier.predict_proba`` does.
    """
    if callable(model):  # a Booster is not callable
        return np.asarray(model(frame, list(features)), dtype=np.float64).reshape(-1)
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        columns = list(model.feature_names or features)
        require_columns(frame, columns, "new data")
        matrix = xgb.DMatrix(frame[columns].to_numpy(np.float32), feature_names=columns)
        best = model.attr("best_iteration")
        if best is not None:
            return np.asarray(model.predict(matrix, iteration_range=(0, int(best) + 1)))
        return np.asarray(model.predict(matrix))
    raise TypeError(f"expected an xgboost Booster or a callable, got {type(model).__name__}")


def labelled_rows(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows that carry a label, and those labels as 0/1 integers (a check judges only those)."""
    if target not in frame.columns:
        raise DataError(f"The new data has no target column {target!r}; set QT_CLM_TARGET.")
    labels = pd.to_numeric(frame[target], errors="coerce")
    keep = labels.notna().to_numpy()
    return frame.loc[keep], labels[keep].to_numpy(dtype=np.int64)


def clipped_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Log loss with probabilities kept off 0 and 1, so one overconfident row cannot make it inf."""
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
