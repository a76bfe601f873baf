"""Fit an XGBoost model on data held in memory and evaluate it honestly: out of time, against a
baseline, for leaks.

The data is split by global time (split.py), fitted with early stopping on the validation slice
(fit.py), saved in XGBoost's native format (modelfile.py) and judged on the out-of-time test
slice (scoring.py). Data too large for memory takes the streamed path instead (batches.py), a
cluster the Dask one (dask_training.py); both return the same ``TrainResult``. The cycle runs
all of them in a training process it can stop (trainprocess.py, trainchild.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import xgboost

from clm_tray.core.ml.fit import fit_booster, round_callbacks
from clm_tray.core.ml.modelfile import save_model
from clm_tray.core.ml.scoring import importance, score_out_of_time
from clm_tray.core.ml.split import check_classes, epoch_ns, split_by_time
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.serialize import to_jsonable

if TYPE_CHECKING:
    from clm_tray.core.ml.data import Dataset


def train_and_evaluate(dataset: Dataset, params: TrainParams, model_path: Path,
                       on_round: Callable[[int, int], None] | None = None) -> TrainResult:
    """Fit on the train slice, stop early on validation, score the out-of-time test slice.

    Metrics (``TrainResult.metrics``): ``train_accuracy``, ``val_accuracy``, ``test_accuracy``
    (threshold 0.5), ``auc`` (ROC AUC) and ``log_loss`` on the test rows, ``baseline_accuracy``
    = the accuracy on the TEST rows of always predicting the majority class of the TRAIN rows,
    ``best_iteration`` (0-based), ``n_trees`` (rounds kept in the saved model) and
    ``test_rows``.

    Importance is XGBoost's "total_gain" (the loss reduction a feature brought over all its
    splits) normalised to sum to 1 over ALL features, 0.0 for features never used (all 0.0
    only if the model made no split at all).

    Leakage rule: flagged when ``test_accuracy - baseline_accuracy > leak_margin`` (default
    0.10) or the test ROC AUC > 0.75. Predicting next-bar direction, a real out-of-time edge
    is a few points; anything that large means a feature almost surely carries future
    information (e.g. next bar's return) or the target. ``leakage_reason`` is one line that
    explains the verdict either way.

    The saved model holds exactly the trees up to the best iteration, so any backend that
    predicts with all trees gets the early-stopped model. It is written atomically in XGBoost's
    native UBJSON format (``model_path`` must end in ``.ubj``).
    """
    started = time.perf_counter()
    model_path = Path(model_path)
    if model_path.suffix != ".ubj":
        raise ValueError(f"model_path must end in .ubj (XGBoost native format): {model_path}")
    frame = dataset.frame
    train, val, test, info = split_by_time(frame, params)
    X, y = dataset.X, dataset.y
    ts = epoch_ns(frame["timestamp"])
    check_classes(y, train, test, ts)

    booster, best = fit_booster(xgboost.QuantileDMatrix(X[train], y[train]),
                                (X[val], y[val]), params,
                                callbacks=round_callbacks(on_round, params))
    booster, best = save_model(booster, best, model_path)

    # One prediction pass over all rows with the saved model (cheaper than asking XGBoost to
    # evaluate the train set every round).
    p = booster.inplace_predict(X)
    hit = (p > 0.5) == (y == 1)
    majority = int(y[train].mean() >= 0.5)
    metrics, leak, reason, edge = score_out_of_time(y[test], p[test], ts[test], majority,
                                                    params.leak_margin)
    metrics = {
        "train_accuracy": float(hit[train].mean()),
        "val_accuracy": float(hit[val].mean()),
        **metrics,
        "best_iteration": best,
        "n_trees": int(booster.num_boosted_rounds()),
    }
    return TrainResult(
        metrics=metrics,
        importance=importance(booster, list(dataset.features)),
        leakage=leak,
        leakage_reason=reason,
        split=info,
        params=asdict(params),
        duration_s=time.perf_counter() - started,
        model_path=str(model_path),
        features=list(dataset.features),
        edge=to_jsonable(edge),
    )
