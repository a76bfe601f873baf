"""Where the data is cut into train, validation and test: by global time, never at random.

Why: a model that looks good only because it saw the future is worse than no model. Every
trainer (in memory, streamed, on a cluster) splits with ``time_cutoffs``, so all of them test on
the same rows:

    train | embargo | validation (early stopping) | embargo | test (last ``test_fraction`` of time)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clm_tray.core.errors import DataError
from clm_tray.core.ml.train_result import SplitInfo, TrainParams

#: Fewest rows any of train / validation / test may hold.
MIN_SLICE_ROWS = 50


def epoch_ns(timestamps: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch in UTC (naive timestamps are taken as UTC)."""
    return pd.DatetimeIndex(timestamps).as_unit("ns").asi8


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def bar_ns(unique_ts: np.ndarray) -> int:
    """The typical spacing of bars: the label horizon is one of them."""
    if unique_ts.size < 2:
        return 0
    return int(np.median(np.diff(unique_ts)))


def _too_little_time(what: str, first_ns: int, last_ns: int, rows: int) -> DataError:
    return DataError(
        f"The data ({_iso(first_ns)} to {_iso(last_ns)}, {rows} rows) covers too little "
        f"time for the train/validation/test split: {what}; add more data or lower "
        "QT_CLM_TEST_FRACTION / QT_CLM_EMBARGO_HOURS."
    )


@dataclass(frozen=True)
class TimeCutoffs:
    """Where the slices begin and end, in ns since the epoch (UTC). Decided once, by
    ``time_cutoffs``, for every trainer (local or on a cluster), so both split alike."""

    first: int
    last: int
    val_start: int
    val_end: int
    test_start: int
    embargo_ns: int
    rows: int

    def masks(self, ts: Any) -> tuple[Any, Any, Any]:
        """Boolean (train, validation, test) masks of ``ts`` (int64 ns): a numpy array or a
        dask Series alike. Rows inside an embargo are in none of them."""
        return ts < self.val_start - self.embargo_ns, \
            (ts >= self.val_start) & (ts <= self.val_end), ts >= self.test_start

    def too_little_time(self, what: str) -> DataError:
        return _too_little_time(what, self.first, self.last, self.rows)

    def split_info(self, train_first: int, train_last: int, train_rows: int, val_rows: int,
                   test_rows: int) -> SplitInfo:
        """The ``SplitInfo`` of these cut-offs; ``DataError`` when a slice is too small."""
        for name, n in (("training", train_rows), ("validation", val_rows), ("test", test_rows)):
            if n < MIN_SLICE_ROWS:
                raise self.too_little_time(
                    f"the {name} slice has {n} rows (need at least {MIN_SLICE_ROWS})")
        return SplitInfo(
            train_start=_iso(train_first), train_end=_iso(train_last),
            val_start=_iso(self.val_start), val_end=_iso(self.val_end),
            test_start=_iso(self.test_start), test_end=_iso(self.last),
            train_rows=int(train_rows), val_rows=int(val_rows), test_rows=int(test_rows),
            embargo_hours=self.embargo_ns / 3_600e9,
        )


def time_cutoffs(unique_ts: np.ndarray, params: TrainParams, rows: int) -> TimeCutoffs:
    """Decide the split from the sorted distinct timestamps (int64 ns) of all ``rows`` rows.

    Test holds the rows at or after the time that leaves the last ``test_fraction`` of the
    time range. Validation (used only for early stopping) is the last ``val_fraction`` of the
    time before the test embargo. Between train and validation, and between validation and
    test, lies an embargo of ``max(embargo_hours, one bar)``: every row of a later slice is
    strictly more than the embargo after every row of an earlier one, so no training label
    (next bar's move) overlaps the period being tested. Rows inside an embargo are unused.
    Needs only the distinct bar times, so a cluster trainer can compute them cheaply.
    """
    if unique_ts.size == 0:
        raise DataError("The training data has no rows; add data before training.")
    t0, t1 = int(unique_ts[0]), int(unique_ts[-1])
    if t1 <= t0:
        raise _too_little_time("all rows share one timestamp", t0, t1, rows)
    embargo_ns = max(int(round(params.embargo_hours * 3_600e9)), bar_ns(unique_ts))

    test_cut = t1 - int(params.test_fraction * (t1 - t0))
    test_start = int(unique_ts[np.searchsorted(unique_ts, test_cut, side="left")])
    pre_ts = unique_ts[unique_ts < test_start - embargo_ns]
    if pre_ts.size < 2:
        raise _too_little_time("nothing is left before the test period and its embargo",
                               t0, t1, rows)
    pre_end = int(pre_ts[-1])
    val_cut = pre_end - int(params.val_fraction * (pre_end - t0))
    val_start = int(pre_ts[np.searchsorted(pre_ts, val_cut, side="left")])
    return TimeCutoffs(first=t0, last=t1, val_start=val_start, val_end=pre_end,
                       test_start=test_start, embargo_ns=embargo_ns, rows=rows)


def split_by_time(
    frame: pd.DataFrame, params: TrainParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, SplitInfo]:
    """Split rows into train, validation and test by global timestamp cutoffs
    (``time_cutoffs`` decides them; see there).

    Returns positional row indices (train, val, test) and a ``SplitInfo``. Raises ``DataError``
    when a slice has fewer than ``MIN_SLICE_ROWS`` rows (``check_classes`` also refuses a
    train or test slice that holds only one target class).
    """
    ts = epoch_ns(frame["timestamp"])
    cut = time_cutoffs(np.unique(ts), params, int(ts.size))
    train, val, test = (np.flatnonzero(m) for m in cut.masks(ts))
    first = int(ts[train].min()) if train.size else cut.first
    last = int(ts[train].max()) if train.size else cut.first
    info = cut.split_info(first, last, train.size, val.size, test.size)
    return train, val, test, info


def check_classes(y: np.ndarray, train: np.ndarray, test: np.ndarray, ts: np.ndarray) -> None:
    """A train or test slice with one target class cannot be fitted or judged: say so."""
    for name, idx in (("training", train), ("test", test)):
        classes = np.unique(y[idx])
        if classes.size < 2:
            raise _too_little_time(
                f"the {name} slice holds only target class {int(classes[0])}",
                int(ts.min()), int(ts.max()), int(ts.size),
            )
