"""The label every row is trained on: a given 0/1 target column, or one derived from prices.

A collector may write the target itself (0/1 numbers, booleans or True/False text) or leave it
to us: then a row's label is 1 when its symbol's next bar closes higher. Either way a row
without a label (an empty cell, a symbol's last bar, a missing close) is dropped by the caller,
and a label that is not 0/1 is one ``DataError`` naming the line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from clm_tray.core.errors import DataError
from clm_tray.core.ml.columns import line_of


def binary_target(col: pd.Series, name: str, target: str) -> pd.Series:
    """0/1 numbers or booleans (True/False text too); NaN stays NaN and is dropped later."""
    if ptypes.is_bool_dtype(col):
        return col.astype("float64")
    if not ptypes.is_numeric_dtype(col):
        mapped = col.astype(str).str.strip().str.lower().map(
            {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0})
        mapped[col.isna()] = np.nan
        bad = mapped.isna() & col.notna()
        if bad.any():
            raise DataError(f"Target column '{target}' in {name} must hold 0/1 values but line "
                            f"{line_of(bad)} holds {str(col[bad].iloc[0])[:40]!r}; fix the "
                            "labels or drop the column to derive it from 'close'.")
        return mapped
    values = col.astype("float64")
    bad = values.notna() & ~values.isin([0.0, 1.0])
    if bad.any():
        raise DataError(f"Target column '{target}' in {name} must hold 0/1 values but line "
                        f"{line_of(bad)} holds {col[bad].iloc[0]!r}; fix the labels or drop "
                        "the column to derive it from 'close'.")
    return values


def derive_target(ts: np.ndarray, codes: np.ndarray, close: np.ndarray) -> np.ndarray:
    """1.0 when the symbol's next bar closes higher than this bar; NaN on each symbol's last bar
    (and where a close is missing), so those rows are dropped. Arguments and result are in file
    row order; ``ts`` is int64 ns, ``codes`` the integer symbol codes."""
    order = np.lexsort((ts, codes))
    sym = codes[order]
    c = close[order]
    nxt = np.empty_like(c)
    nxt[:-1] = c[1:]
    nxt[-1] = np.nan
    last_of_symbol = np.append(sym[1:] != sym[:-1], True)
    nxt[last_of_symbol] = np.nan
    derived = np.where(np.isnan(c) | np.isnan(nxt), np.nan, (nxt > c).astype(np.float64))
    out = np.empty_like(derived)
    out[order] = derived
    return out
