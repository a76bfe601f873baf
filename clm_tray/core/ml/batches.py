"""Out-of-core training: stream the prepared Arrow file into XGBoost batch by batch.

Why: at 10 M rows x 22 features one float32 copy of the features is 880 MB, and the in-memory
path holds several (a pandas frame, the train / validation slices, XGBoost's own matrix). Here
the training process never holds more than one record batch of raw rows (``prepared.BATCH_ROWS``,
~90 MB): a ``xgboost.DataIter`` feeds the batches of the train rows into a ``QuantileDMatrix``
(XGBoost keeps only its compressed histogram-bin matrix, ~1 byte per value), the validation rows
into a second one that shares its bin edges, and the predictions for the metrics are made batch
by batch too. The result is the same ``TrainResult`` as ``training.train_and_evaluate``: the
same split (rows are sorted by time, so train, validation and test are contiguous row ranges),
the same XGBoost parameters, early stopping, metrics, importance and leakage rule.

The training child uses this path when the data has more than ``stream_rows()`` rows (2 M by
default); smaller data takes the in-memory path, which is faster when memory is no concern.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import xgboost

from clm_tray.core.errors import DataError
from clm_tray.core.ml import prepared
from clm_tray.core.ml.fit import check_device, fit_booster, round_callbacks
from clm_tray.core.ml.modelfile import save_model
from clm_tray.core.ml.scoring import importance, score_out_of_time
from clm_tray.core.ml.split import check_classes, split_by_time
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.serialize import to_jsonable

#: Above this many rows the training child streams (CLM_TRAY_STREAM_ROWS overrides it, for
#: benchmarks and tests that compare both paths on the same data).
STREAM_ROWS = 2_000_000


def stream_rows() -> int:
    try:
        return int(os.environ.get("CLM_TRAY_STREAM_ROWS") or STREAM_ROWS)
    except ValueError:
        return STREAM_ROWS


class PreparedFile:
    """Column reads and row-range batches of a prepared file; each batch is read from disk
    when asked for and released after use (no memory map whose pages would stay resident)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        meta = prepared.read_meta(path)
        self.features: list[str] = meta["features"]
        self.target: str = meta["target"]
        self.meta = meta
        with pa.OSFile(self.path, "rb") as source:
            reader = ipc.open_file(source)
            self.batch_rows = [reader.get_batch(i).num_rows
                               for i in range(reader.num_record_batches)]
        self.starts = np.concatenate([[0], np.cumsum(self.batch_rows)]).astype(np.int64)
        self.rows = int(self.starts[-1])

    def column(self, name: str) -> np.ndarray:
        with pa.OSFile(self.path, "rb") as source:
            reader = ipc.open_file(source)
            parts = [reader.get_batch(i).column(name) for i in range(reader.num_record_batches)]
        return pa.chunked_array(parts).to_numpy()

    def batches(self, lo: int, hi: int):
        """(X float32, y, first row) for the rows [lo, hi), one record batch at a time."""
        with pa.OSFile(self.path, "rb") as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                b0, b1 = int(self.starts[i]), int(self.starts[i + 1])
                if b1 <= lo or b0 >= hi:
                    continue
                batch = reader.get_batch(i).slice(max(lo, b0) - b0, min(hi, b1) - max(lo, b0))
                X = np.empty((batch.num_rows, len(self.features)), dtype=np.float32)
                for j, name in enumerate(self.features):
                    X[:, j] = batch.column(name).to_numpy(zero_copy_only=False)
                y = batch.column(self.target).to_numpy(zero_copy_only=False)
                yield X, y, max(lo, b0)
                del batch, X, y


class _RangeIter(xgboost.DataIter):
    """Feeds the rows [lo, hi) of a prepared file to a QuantileDMatrix, batch by batch."""

    def __init__(self, data: PreparedFile, lo: int, hi: int) -> None:
        self.data, self.lo, self.hi = data, lo, hi
        self._it: Any = None
        super().__init__(cache_prefix=None, release_data=True)

    def next(self, input_data: Any) -> bool:
        if self._it is None:
            self._it = self.data.batches(self.lo, self.hi)
        try:
            X, y, _ = next(self._it)
        except StopIteration:
            return False
        input_data(data=X, label=y)
        return True

    def reset(self) -> None:
        self._it = None


def _as_range(idx: np.ndarray, what: str) -> tuple[int, int]:
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    if hi - lo != idx.size:  # rows are sorted by time, so a slice by time is contiguous
        raise DataError(f"the prepared data is not sorted by time ({what} rows are not "
                        "contiguous); retrain to rebuild it.")
    return lo, hi


def train_streaming(path: Path | str, params: TrainParams, model_path: Path,
                    on_round: Callable[[int, int], None] | None = None) -> TrainResult:
    """``training.train_and_evaluate`` for a prepared file too large to hold in memory."""
    started = time.perf_counter()
    model_path = Path(model_path)
    data = PreparedFile(path)
    ts = data.column("timestamp").astype("datetime64[ns]").view(np.int64)
    frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC")})
    train, val, test, info = split_by_time(frame, params)
    del frame
    y = data.column(data.target).astype(np.int8)
    check_classes(y, train, test, ts)
    tr, va, te = (slice(*_as_range(idx, what)) for idx, what in
                  ((train, "training"), (val, "validation"), (test, "test")))
    test_ts = ts[te].copy()  # for the edge test, bar by bar
    del ts, train, val, test

    check_device(params.device)
    dtrain = xgboost.QuantileDMatrix(_RangeIter(data, tr.start, tr.stop))
    booster, best = fit_booster(dtrain, _RangeIter(data, va.start, va.stop), params,
                                callbacks=round_callbacks(on_round, params))
    del dtrain
    booster, best = save_model(booster, best, model_path)

    p = np.empty(data.rows, dtype=np.float32)  # one prediction pass, batch by batch
    for X, _y, first in data.batches(0, data.rows):
        p[first:first + len(X)] = booster.inplace_predict(X)
    hit = (p > 0.5) == (y == 1)
    majority = int(y[tr].mean() >= 0.5)
    test_metrics, leak, reason, edge = score_out_of_time(y[te], p[te], test_ts, majority,
                                                         params.leak_margin)
    metrics = {"train_accuracy": float(hit[tr].mean()), "val_accuracy": float(hit[va].mean()),
               **test_metrics, "best_iteration": best,
               "n_trees": int(booster.num_boosted_rounds())}
    return TrainResult(
        metrics=metrics, importance=importance(booster, list(data.features)), leakage=leak,
        leakage_reason=reason, split=info, params=asdict(params),
        duration_s=time.perf_counter() - started, model_path=str(model_path),
        features=list(data.features), edge=to_jsonable(edge),
    )
