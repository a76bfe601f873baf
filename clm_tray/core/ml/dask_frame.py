"""The training data as a dask.dataframe, parsed on the workers as the local loader parses it.

The functions here run ON the workers (reading partitions, prediction) and travel to them by
value (cloudpickle), so workers need dask, pandas, pyarrow and xgboost (the same version),
never clm-tray. ``shipped`` wraps any such function for the trip.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from clm_tray.core.errors import DataError

# Functions below run on the workers: ship them by value, not as "import clm_tray...".
cloudpickle.register_pickle_by_value(sys.modules[__name__])

_PARQUET = (".parquet", ".pq")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
#: Column names the trainer adds: each row's time in ns, and its place in the file.
TS, _PART, _POS = "__ts_ns", "__part", "__pos"


def shipped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a closure: plain pickle refuses closures, so Dask falls back to cloudpickle,
    which (its module registered for it) sends the code by value."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return call


def _epoch_unit(values: np.ndarray) -> str:
    top = float(np.nanmax(np.abs(values))) if values.size else 0.0
    return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"


def _timestamps_ns(col: pd.Series) -> np.ndarray:
    """The same readings as the local loader: ISO text (any offset), datetimes (naive = UTC),
    epoch seconds/milliseconds told apart by size."""
    from pandas.api import types as ptypes

    if isinstance(col.dtype, pd.DatetimeTZDtype):
        out = col.dt.tz_convert("UTC")
    elif ptypes.is_datetime64_dtype(col):
        out = col.dt.tz_localize("UTC")
    elif ptypes.is_numeric_dtype(col):
        arr = col.to_numpy(dtype=np.float64)
        out = pd.to_datetime(col, unit=_epoch_unit(arr), utc=True)
    else:
        text = col.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if len(text) and numeric.notna().all():
            arr = numeric.to_numpy(dtype=np.float64)
            out = pd.to_datetime(numeric, unit=_epoch_unit(arr), utc=True)
        else:
            out = pd.to_datetime(text, utc=True, format="ISO8601")
    return pd.DatetimeIndex(out).as_unit("ns").asi8


def _as_label(col: pd.Series) -> np.ndarray:
    """0/1 as float (NaN when empty); text true/false too, as the local loader reads it."""
    from pandas.api import types as ptypes

    if ptypes.is_bool_dtype(col) or ptypes.is_numeric_dtype(col):
        return col.astype("float64").to_numpy(na_value=np.nan)
    mapped = col.astype(str).str.strip().str.lower().map(
        {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0})
    mapped[col.isna()] = np.nan
    return mapped.to_numpy(dtype=np.float64, na_value=np.nan)


def _prepare_partition(part: pd.DataFrame, features: list[str], label: str, derive: bool,
                       partition_info: dict | None = None) -> pd.DataFrame:
    """Parse one partition: int64 ns times, float32 features (inf → NaN), the label source,
    and the row's place in the file (so duplicates keep the first row, as locally)."""
    out = pd.DataFrame({
        TS: _timestamps_ns(part["timestamp"]),
        "symbol": part["symbol"].astype(str).to_numpy(),
        _PART: np.int32((partition_info or {}).get("number", 0)),
        _POS: np.arange(len(part), dtype=np.int64),
    })
    for name in features:
        values = pd.to_numeric(part[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
        out[name] = np.where(np.isinf(values), np.nan, values).astype(np.float32)
    source = pd.to_numeric(part["close"], errors="coerce") if derive else None
    out[label] = (source.to_numpy(dtype=np.float64, na_value=np.nan) if derive
                  else _as_label(part[label]))
    return out


def _finish_partition(part: pd.DataFrame, features: list[str], label: str, derive: bool
                      ) -> pd.DataFrame:
    """One partition holding whole symbols: drop repeated (symbol, time) rows keeping the first
    in the file, derive next-bar direction from 'close' when there is no label column, and
    drop rows without a label. Columns out: time, features, label (int8)."""
    part = part.sort_values(["symbol", TS, _PART, _POS], kind="stable")
    part = part[~part.duplicated(["symbol", TS], keep="first")]
    values = part[label].to_numpy(dtype=np.float64)
    if derive:
        sym = part["symbol"].to_numpy()
        nxt = np.empty_like(values)
        nxt[:-1] = values[1:]
        if len(nxt):
            nxt[-1] = np.nan
        last_of_symbol = np.append(sym[1:] != sym[:-1], True) if len(sym) else sym.astype(bool)
        nxt[last_of_symbol] = np.nan
        values = np.where(np.isnan(values) | np.isnan(nxt), np.nan,
                          (nxt > values).astype(np.float64))
    keep = ~np.isnan(values)
    out = part.loc[keep, [TS, *features]].reset_index(drop=True)
    out[label] = values[keep].astype(np.int8)
    return out


def predict_partition(part: pd.DataFrame, model: bytes, features: list[str], label: str
                       ) -> pd.DataFrame:
    import xgboost

    booster = xgboost.Booster(model_file=bytearray(model))
    p = booster.inplace_predict(part[features].to_numpy(dtype=np.float32)) if len(part) \
        else np.empty(0)
    return pd.DataFrame({"ts": part[TS].to_numpy(dtype=np.int64),
                         "y": part[label].to_numpy(dtype=np.int8),
                         "p": np.asarray(p, dtype=np.float32)})


def read_frame(path: Path, label: str, features: list[str], workers: int = 1) -> Any:
    """The training data as a dask.dataframe: a CSV, a Parquet file, or a folder of Parquet
    files (hive partitions such as ``symbol=BTCUSDT/`` become columns). Shuffled so that each
    partition holds whole symbols (duplicates and the derived target need a symbol's bars
    together) into at least one partition per worker, so that every worker trains."""
    import dask.dataframe as dd

    suffix = path.suffix.lower()
    if path.is_dir() or suffix in _PARQUET:
        raw = dd.read_parquet(str(path))
    else:
        blocksize = None if suffix in _COMPRESSED else "64MB"
        raw = dd.read_csv(str(path), blocksize=blocksize, assume_missing=True,
                          dtype={"timestamp": "object", "symbol": "object"})
    raw.columns = [str(c).strip() for c in raw.columns]
    derive = label not in raw.columns
    wanted = ["timestamp", "symbol", *features, "close" if derive else label]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise DataError(f"{path} has no '{missing[0]}' column, which training needs; add it or "
                        "fix the feature list.")
    meta = pd.DataFrame({TS: pd.Series(dtype="int64"), "symbol": pd.Series(dtype="object"),
                         _PART: pd.Series(dtype="int32"), _POS: pd.Series(dtype="int64"),
                         **{f: pd.Series(dtype="float32") for f in features},
                         label: pd.Series(dtype="float64")})
    prepared = raw[wanted].map_partitions(shipped(_prepare_partition), features, label, derive,
                                          meta=meta)
    grouped = prepared.shuffle(on="symbol", npartitions=max(workers, prepared.npartitions))
    meta_out = pd.DataFrame({TS: pd.Series(dtype="int64"),
                             **{f: pd.Series(dtype="float32") for f in features},
                             label: pd.Series(dtype="int8")})
    return grouped.map_partitions(shipped(_finish_partition), features, label, derive,
                                  meta=meta_out)
