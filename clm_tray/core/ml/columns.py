"""Judge the raw columns of the training data: timestamps, the feature set, bad cells.

The second half of loading data (``datafile.py`` reads the file, ``data.py`` puts it together).
The feature set never changes silently: a configured list is checked as given, an automatic one
takes every numeric column but keys, target and raw prices, and a column that is numeric except
for a few cells is still a feature whose bad cell is one ``DataError`` naming the column, the
file line and the value (or, with QT_CLM_COERCE_BAD_CELLS, an empty cell that is counted).
Timestamps may be ISO text with any offset or epoch seconds/milliseconds; they come out UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from clm_tray.core.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
KEY_COLUMNS = ("timestamp", "symbol")


def column_projection(target: str, features: list[str] | None
                      ) -> Callable[[list[str]], list[str]]:
    """Which columns of a Parquet file the checks read: keys, target (or close to derive it)
    and the features (configured ones, else every column but the raw prices)."""
    def keep(names: list[str]) -> list[str]:
        stripped = {str(n).strip(): n for n in names}
        wanted = {*KEY_COLUMNS, target}
        if target not in stripped:
            wanted.add("close")
        if features is None:
            return [n for s, n in stripped.items() if s in wanted or s not in PRICE_COLUMNS]
        wanted.update(str(f).strip() for f in features)
        return [n for s, n in stripped.items() if s in wanted]
    return keep


def parse_timestamps(col: pd.Series, name: str) -> pd.Series:
    """ISO strings (any offset) or epoch seconds/milliseconds -> datetime64[ns, UTC]."""
    if col.isna().any():
        raise DataError(f"{name} line {line_of(col.isna())} has an empty 'timestamp'; fill it "
                        "in or delete the row.")
    try:
        if isinstance(col.dtype, pd.DatetimeTZDtype):  # pyarrow parsed ISO text with an offset
            out = col.dt.tz_convert("UTC")
        elif ptypes.is_datetime64_dtype(col):  # naive datetimes are taken as UTC
            out = col.dt.tz_localize("UTC")
        elif ptypes.is_datetime64_any_dtype(col):
            out = pd.to_datetime(col, utc=True)
        elif ptypes.is_bool_dtype(col):
            raise ValueError("boolean timestamps")
        elif ptypes.is_numeric_dtype(col):
            out = _from_epoch(col)
        else:
            text = col.astype(str).str.strip()
            try:  # stops at the first non-number, so ISO text costs almost nothing here
                numeric = pd.to_numeric(text)
            except (ValueError, TypeError):
                numeric = None
            if numeric is not None and numeric.notna().all():
                out = _from_epoch(numeric)
            else:
                out = pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        bad = _first_bad_timestamp(col)
        raise DataError(f"Column 'timestamp' in {name} cannot be read as dates ({bad}); use "
                        "ISO-8601 text like 2025-12-11T08:00:00Z or epoch seconds/milliseconds."
                        ) from exc
    return out.astype("datetime64[ns, UTC]")


def _from_epoch(values: pd.Series) -> pd.Series:
    """Epoch numbers: the unit is told apart by size (seconds ~1e9, ms ~1e12, us, ns)."""
    arr = values.to_numpy(dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("non-finite epoch")
    top = np.abs(arr).max()
    unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
    return pd.to_datetime(pd.Series(values.to_numpy(), index=values.index), unit=unit, utc=True)


def _first_bad_timestamp(col: pd.Series) -> str:
    for pos, value in enumerate(col.tolist()):
        try:
            if isinstance(value, str):
                pd.Timestamp(value.strip())
            elif not isinstance(value, (int, float, np.integer, np.floating, pd.Timestamp)):
                raise ValueError
        except (ValueError, TypeError, OverflowError):
            return f"line {pos + 2}: {str(value)[:40]!r}"
    return "mixed or out-of-range values"


def choose_features(raw: pd.DataFrame, name: str, target: str, configured: list[str] | None,
                     notes: list[str]) -> list[str]:
    """The configured list as given, else every numeric column that is not a key, the target or
    a raw price (raw prices are not stationary across symbols and time)."""
    if configured is not None:
        chosen = [str(c).strip() for c in configured]
        missing = [c for c in chosen if c not in raw.columns]
        if missing:
            raise DataError(f"Feature column '{missing[0]}' is not in {name}; fix the feature "
                            "list or add the column "
                            f"({len(missing)} missing: {short_list(missing)}).")
        reserved = [c for c in chosen if c in (*KEY_COLUMNS, target)]
        if reserved:
            raise DataError(f"The feature list for {name} includes '{reserved[0]}', which is a "
                            "key or the target; remove it from the feature list.")
        if len(set(chosen)) != len(chosen):
            raise DataError(f"The feature list for {name} names a column twice; list each "
                            "feature once.")
        if not chosen:
            raise DataError(f"The feature list for {name} is empty; name at least one column or "
                            "leave the list unset to use every numeric column.")
        return chosen
    skip = {*KEY_COLUMNS, target, *PRICE_COLUMNS}
    candidates = [c for c in raw.columns if c not in skip]
    chosen = [c for c in candidates if ptypes.is_numeric_dtype(raw[c]) or raw[c].isna().all()
              or _mostly_numbers(raw[c])]
    text = [c for c in candidates if c not in chosen]
    if text:
        notes.append(f"ignored non-numeric column(s): {short_list(text)}")
    if not chosen:
        raise DataError(f"{name} has no numeric feature columns besides timestamp, symbol, "
                        f"'{target}' and open/high/low/close; add feature columns.")
    return chosen


def _mostly_numbers(col: pd.Series) -> bool:
    """A text column whose filled cells are mostly numbers is a numeric column with bad cells
    (a collector's glitch), not a text column to drop."""
    filled = col.dropna()
    if filled.empty or ptypes.is_bool_dtype(col):
        return False
    numbers = pd.to_numeric(filled.astype(str).str.strip(), errors="coerce").notna()
    return bool(numbers.mean() > 0.5)


def numeric_feature(col: pd.Series, name: str, column: str,
                     coerced: dict[str, int] | None = None) -> pd.Series:
    """The column as numbers. A cell that is not a number is an error naming it, unless
    ``coerced`` is given: then it becomes NaN and is counted there under the column's name."""
    if ptypes.is_bool_dtype(col):
        return col.astype("float64")
    if ptypes.is_numeric_dtype(col):
        return col
    text = col.astype(str).str.strip().where(col.notna())
    converted = pd.to_numeric(text, errors="coerce")
    bad = converted.isna() & col.notna()
    if not bad.any():
        return converted
    if coerced is not None:
        coerced[column] = int(bad.sum())
        return converted
    example = str(col[bad].iloc[0])[:40]
    raise DataError(f"Column '{column}' in {name} is not numeric at line {line_of(bad)}: "
                    f"{example!r}; fix that cell (or set QT_CLM_COERCE_BAD_CELLS=true to treat "
                    "such cells as empty).")


def line_of(mask: pd.Series) -> int:
    """File line of the first flagged row (header is line 1), for CSV users."""
    return int(mask.index[mask.to_numpy()][0]) + 2


def short_list(items: Iterable[object]) -> str:
    """Up to eight names for a message, with how many there are in all."""
    names = [str(i) for i in items]
    return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
