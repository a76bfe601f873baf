"""Load and validate the training data, the first step of every retrain cycle.

A trader's collector writes the data, not us, so anything can be wrong with it. Every problem
the model cannot survive becomes one `DataError` sentence naming the file, the column and the
fix; problems it can survive (duplicate bars, infinities) are repaired and reported. The result
is a `Dataset` whose frame is sorted by (timestamp, symbol) with a fingerprint that the
manifest records, so a version always says exactly what it was trained on.

This module puts the steps together; reading the file is ``datafile.py``, judging its columns
(timestamps, features, bad cells) ``columns.py``, and the labels ``labels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from clm_tray.core.errors import DataError
from clm_tray.core.ml.columns import (
    KEY_COLUMNS,
    choose_features,
    column_projection,
    line_of,
    numeric_feature,
    parse_timestamps,
    short_list,
)
from clm_tray.core.ml.datafile import read_data_file
from clm_tray.core.ml.labels import binary_target, derive_target


@dataclass
class DataFingerprint:
    """What a model was trained on; stored in the manifest."""

    path: str
    rows: int
    symbols: int
    start: str  # ISO-8601 UTC
    end: str
    sha256: str


@dataclass
class Dataset:
    """Validated training data: the frame plus what was repaired on the way in."""

    frame: pd.DataFrame
    features: list[str]
    target: str
    fingerprint: DataFingerprint
    warnings: list[str] = field(default_factory=list)
    inf_count: int = 0
    duplicates_dropped: int = 0

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - the name every ML reader expects
        """Feature matrix in `features` order (float32, NaN for missing); a new array per call."""
        return self.frame[self.features].to_numpy(dtype=np.float32)

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.target].to_numpy(dtype=np.int64)


def load_dataset(path: Path | str, *, target: str = "target", features: list[str] | None = None,
                 min_rows: int = 200, coerce_bad_cells: bool = False,
                 cache_dir: Path | None = None, encoding: str | None = None) -> Dataset:
    """Read a CSV or Parquet file, validate it and return a `Dataset`; raise `DataError` with one
    actionable sentence for anything a model cannot be trained on.

    The feature set never changes silently: a column that is numeric except for a few cells is
    still a feature, and such a cell is a `DataError` naming the column, the line and the
    value, or (``coerce_bad_cells``, QT_CLM_COERCE_BAD_CELLS) becomes NaN and is counted in
    the warnings.

    Speed matters (this runs in the cycle's parent and again in the training child): the file is
    read once (its bytes are parsed and hashed for the fingerprint), symbols become integer
    codes so the duplicate check, the per-symbol target and the (timestamp, symbol) order are
    integer sorts, and the result frame is assembled once, already sorted. With ``cache_dir``
    (the cycle passes ``<store>/cache``) an append-only CSV is parsed only where it grew
    (datacache.py). Features are float32, what XGBoost uses anyway: half the memory."""
    path = Path(path).expanduser()
    name = str(path)
    raw, digest = read_data_file(path, cache_dir, column_projection(target, features), encoding)
    raw.columns = [str(c).strip() for c in raw.columns]
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()][0]
        raise DataError(f"{name} has two columns named '{dup}'; rename or remove one of them.")
    for col in KEY_COLUMNS:
        if col not in raw.columns:
            raise DataError(f"{name} has no '{col}' column; the data needs 'timestamp' and "
                            f"'symbol' columns (found: {short_list(raw.columns)}).")
    notes: list[str] = []

    stamps = parse_timestamps(raw["timestamp"], name)
    symbols = raw["symbol"]
    if symbols.isna().any():
        row = line_of(symbols.isna())
        raise DataError(f"{name} line {row} has an empty 'symbol'; fill it in or delete the row.")
    ts = np.asarray(stamps.array.asi8)  # int64 ns since the epoch, UTC
    # Codes follow the sorted symbol names, so sorting codes sorts symbols.
    codes, names = _symbol_codes(symbols)
    order = np.lexsort((codes, ts))  # (timestamp, symbol); stable: file order within ties

    # Duplicate (symbol, timestamp) rows are neighbours in that order; the first in the file
    # (first in each run, the sort being stable) is kept.
    ts_sorted, codes_sorted = ts[order], codes[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = (ts_sorted[1:] == ts_sorted[:-1]) & (codes_sorted[1:] == codes_sorted[:-1])
    duplicates = int(repeat.sum())
    if duplicates:
        notes.append(f"dropped {duplicates} duplicate (symbol, timestamp) rows")
        dropped = np.zeros(len(order), dtype=bool)
        dropped[order[repeat]] = True
        raw = raw.loc[~dropped]  # rare: later checks see exactly the rows that are kept
        order = order[~repeat]
        # positions into the kept rows: row p of the file is row p - (drops before p) of raw
        order = order - np.cumsum(dropped)[order]
        ts, codes = ts[~dropped], codes[~dropped]

    feature_list = choose_features(raw, name, target, features, notes)
    values = []
    inf_count = 0
    coerced: dict[str, int] = {}
    for col in feature_list:
        series = numeric_feature(raw[col], name, col, coerced if coerce_bad_cells else None)
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        inf = np.isinf(arr)
        if inf.any():
            inf_count += int(inf.sum())
            arr = np.where(inf, np.nan, arr)
        if np.isnan(arr).all():
            raise DataError(f"Column '{col}' in {name} has no usable values (all empty, NaN or "
                            "inf); fix the column or leave it out of the feature list.")
        values.append(arr.astype(np.float32))
        if col not in (target, "close"):
            del raw[col]  # its memory goes now, not at the end (10 M rows: ~80 MB a column)
            # A column read from Parquet is Arrow's memory, which its allocator keeps for reuse
            # unless told (nothing after this allocates through Arrow): ~1 GB at 10 M rows.
            pa.default_memory_pool().release_unused()
    if inf_count:
        notes.append(f"replaced {inf_count} infinite feature values with NaN")
    if coerced:
        notes.append(f"treated {sum(coerced.values())} non-numeric cell(s) as empty "
                     f"({', '.join(f'{c}: {n}' for c, n in coerced.items())})")

    if target in raw.columns:
        labels = binary_target(raw[target], name, target).to_numpy(dtype=np.float64)
    elif "close" in raw.columns:
        close = numeric_feature(raw["close"], name, "close").to_numpy(
            dtype=np.float64, na_value=np.nan)
        labels = derive_target(ts, codes, close)
    else:
        raise DataError(f"{name} has no '{target}' column and no 'close' column to derive it "
                        f"from; add a 0/1 '{target}' column (1 = the next bar closes higher) or a "
                        "'close' price column.")
    labels = labels[order]
    missing_target = np.isnan(labels)
    count = int(missing_target.sum())
    if count:
        order, labels = order[~missing_target], labels[~missing_target]
        if "close" in raw.columns and target not in raw.columns:
            lost = count - count_distinct(codes[order]) if len(order) else count
            if lost > 0:
                notes.append(f"dropped {lost} rows whose close or next close is missing")
        else:
            notes.append(f"dropped {count} rows with an empty '{target}'")

    if len(order) < min_rows:
        raise DataError(f"{name} has only {len(order)} usable rows; at least {min_rows} are "
                        "needed for a train/validation/test split by time, so collect more data.")
    columns: dict[str, object] = {
        "timestamp": pd.DatetimeIndex(ts[order].view("datetime64[ns]")).tz_localize("UTC"),
        "symbol": names[codes[order]],
    }
    values.reverse()
    for col in feature_list:  # each unordered column is released once reordered
        columns[col] = values.pop()[order]
    columns[target] = labels.astype(np.int64)
    frame = pd.DataFrame(columns, copy=False)
    fingerprint = DataFingerprint(
        path=str(path.resolve()), rows=len(frame), symbols=count_distinct(codes[order]),
        start=frame["timestamp"].iloc[0].isoformat(), end=frame["timestamp"].iloc[-1].isoformat(),
        sha256=digest,
    )
    return Dataset(frame=frame, features=feature_list, target=target, fingerprint=fingerprint,
                   warnings=notes, inf_count=inf_count, duplicates_dropped=duplicates)


def _symbol_codes(symbols: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the symbols (as text) and the sorted names they index.

    A Parquet read gives a categorical: its few categories are factorized instead of one text
    per row (``astype(str)`` of 10 M rows was the load's peak: +0.7 GB)."""
    if isinstance(symbols.dtype, pd.CategoricalDtype):
        by_category, names = pd.factorize(symbols.cat.categories.astype(str).to_numpy(),
                                          sort=True)
        return by_category[symbols.cat.codes.to_numpy()], names
    return pd.factorize(symbols.astype(str).to_numpy(), sort=True)


def count_distinct(codes: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(codes))) if len(codes) else 0


