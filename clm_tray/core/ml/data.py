"""Load and validate the training data, the first step of every retrain cycle.

A trader's collector writes the data, not us, so anything can be wrong with it. Every problem
the model cannot survive becomes one `DataError` sentence naming the file, the column and the
fix; problems it can survive (duplicate bars, infinities) are repaired and reported. The result
is a `Dataset` whose frame is sorted by (timestamp, symbol) with a fingerprint that the
manifest records, so a version always says exactly what it was trained on.
"""

from __future__ import annotations

import hashlib
import io
import warnings as _warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api import types as ptypes

from clm_tray.core.errors import DataError
from clm_tray.core.ml import datacache

PRICE_COLUMNS = ("open", "high", "low", "close")
KEY_COLUMNS = ("timestamp", "symbol")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".txt", ".gz", ".bz2", ".zip", ".xz", ".zst")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}


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
    raw, digest = _read(path, cache_dir, _projection(target, features), encoding)
    raw.columns = [str(c).strip() for c in raw.columns]
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()][0]
        raise DataError(f"{name} has two columns named '{dup}'; rename or remove one of them.")
    for col in KEY_COLUMNS:
        if col not in raw.columns:
            raise DataError(f"{name} has no '{col}' column; the data needs 'timestamp' and "
                            f"'symbol' columns (found: {_short_list(raw.columns)}).")
    notes: list[str] = []

    stamps = _parse_timestamps(raw["timestamp"], name)
    symbols = raw["symbol"]
    if symbols.isna().any():
        row = _line_of(symbols.isna())
        raise DataError(f"{name} line {row} has an empty 'symbol'; fill it in or delete the row.")
    ts = np.asarray(stamps.array.asi8)  # int64 ns since the epoch, UTC
    # Codes follow the sorted symbol names, so sorting codes sorts symbols.
    codes, names = pd.factorize(symbols.astype(str).to_numpy(), sort=True)
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

    feature_list = _choose_features(raw, name, target, features, notes)
    values = []
    inf_count = 0
    coerced: dict[str, int] = {}
    for col in feature_list:
        series = _numeric_feature(raw[col], name, col, coerced if coerce_bad_cells else None)
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
    if inf_count:
        notes.append(f"replaced {inf_count} infinite feature values with NaN")
    if coerced:
        notes.append(f"treated {sum(coerced.values())} non-numeric cell(s) as empty "
                     f"({', '.join(f'{c}: {n}' for c, n in coerced.items())})")

    if target in raw.columns:
        labels = _binary_target(raw[target], name, target).to_numpy(dtype=np.float64)
    elif "close" in raw.columns:
        close = _numeric_feature(raw["close"], name, "close").to_numpy(
            dtype=np.float64, na_value=np.nan)
        labels = _derive_target(ts, codes, close)
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
            lost = count - _count_distinct(codes[order]) if len(order) else count
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
        path=str(path.resolve()), rows=len(frame), symbols=_count_distinct(codes[order]),
        start=frame["timestamp"].iloc[0].isoformat(), end=frame["timestamp"].iloc[-1].isoformat(),
        sha256=digest,
    )
    return Dataset(frame=frame, features=feature_list, target=target, fingerprint=fingerprint,
                   warnings=notes, inf_count=inf_count, duplicates_dropped=duplicates)


def _count_distinct(codes: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(codes))) if len(codes) else 0


def csv_as_utf8(data: bytes, name: str, encoding: str | None = None) -> bytes:
    """The bytes of a CSV as UTF-8 without BOM, which is what the parsers read.

    UTF-8 (with or without BOM) is taken as is; else the file is decoded with ``encoding``
    (``QT_CLM_DATA_ENCODING``, e.g. latin-1) when one is set; else one line names the first
    byte that is not UTF-8, so the user knows which file and where.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError as exc:
        if encoding:
            try:
                return data.decode(encoding).encode("utf-8")
            except (UnicodeDecodeError, LookupError) as again:
                raise DataError(f"Training data file {name} cannot be read as {encoding} "
                                f"({again}); set QT_CLM_DATA_ENCODING to the file's encoding."
                                ) from None
        raise DataError(
            f"Training data file {name} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start:,}); save it as UTF-8 or set QT_CLM_DATA_ENCODING (e.g. latin-1)."
        ) from None


def _projection(target: str, features: list[str] | None):
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


def _read(path: Path, cache_dir: Path | None = None, keep=None, encoding: str | None = None
          ) -> tuple[pd.DataFrame, str]:
    """The file as a raw frame plus the sha256 of its bytes (read once, hashed beside the
    parse: hashlib and pyarrow both release the GIL). An uncompressed CSV goes through the
    data cache when ``cache_dir`` is given; Parquet is read column-projected by ``keep``."""
    name = str(path)
    if not path.exists():
        raise DataError(f"Training data file {name} does not exist; point QT_CLM_DATA_PATH at "
                        "your CSV or Parquet file.")
    if path.is_dir():
        return _read_parquet_folder(path)
    if path.stat().st_size == 0:
        raise DataError(f"Training data file {name} is empty (0 bytes); let the collector write "
                        "it again or point QT_CLM_DATA_PATH at another file.")
    suffix = path.suffix.lower()
    if suffix not in _PARQUET and suffix not in _CSV:
        raise DataError(f"Training data file {name} has an unknown type '{suffix}'; use a "
                        ".csv or .parquet file.")
    try:
        if suffix in _PARQUET:
            with ThreadPoolExecutor(max_workers=1) as pool:
                digest = pool.submit(datacache.sha256_file, path)
                frame = datacache.read_parquet_projected(path, keep or list)
                sha256 = digest.result()
        elif cache_dir is not None and suffix not in _COMPRESSION:
            frame, sha256 = datacache.read_csv_cached(
                path, cache_dir, lambda data: _read_csv(csv_as_utf8(data, name, encoding), None))
        else:
            data = path.read_bytes()
            with ThreadPoolExecutor(max_workers=1) as pool:
                digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
                compression = _COMPRESSION.get(suffix)
                text = data if compression else csv_as_utf8(data, name, encoding)
                frame = _read_csv(text, compression)
                sha256 = digest.result()
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"Training data file {name} is empty (no header, no rows); let the "
                        "collector write it again.") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, TypeError,
            EOFError, KeyError, IndexError, pa.ArrowException) as exc:  # cut archives, bad cells
        kind = "Parquet" if suffix in _PARQUET else "CSV"
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"Training data file {name} cannot be read as {kind} ({reason}); "
                        "repair or regenerate the file.") from exc
    if frame.empty:
        raise DataError(f"Training data file {name} has a header but no data rows; wait for the "
                        "collector to write data or point QT_CLM_DATA_PATH at another file.")
    return frame, sha256


def _read_parquet_folder(path: Path) -> tuple[pd.DataFrame, str]:
    """A folder of Parquet files (e.g. partitioned ``symbol=BTCUSDT/part-0.parquet``, as a
    cluster trainer reads it): one frame, partition folders become columns; the sha256 covers
    every file's relative path and bytes, in name order."""
    name = str(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _PARQUET)
    if not files:
        raise DataError(f"Training data path {name} is a folder without .parquet files; point "
                        "QT_CLM_DATA_PATH at a CSV or Parquet file, or a folder of Parquet files.")
    digest = hashlib.sha256()
    try:
        for f in files:
            digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
        frame = pd.read_parquet(path)
    except (ValueError, OSError, TypeError, pa.ArrowException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"Training data folder {name} cannot be read as Parquet ({reason}); "
                        "repair or regenerate its files.") from exc
    for col in frame.columns:  # partition values come back as categories
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(str)
    if frame.empty:
        raise DataError(f"Training data folder {name} holds no data rows; wait for the "
                        "collector to write data or point QT_CLM_DATA_PATH elsewhere.")
    return frame.reset_index(drop=True), digest.hexdigest()


def _read_csv(data: bytes, compression: str | None) -> pd.DataFrame:
    """pandas' pyarrow engine (multi-threaded; ~4x faster than the C engine on the 45 MB demo
    CSV on 2 cores, measured) over the bytes already in memory; when it refuses a file, the C
    engine reads it (or explains precisely why it cannot)."""
    def source() -> io.BufferedIOBase | pa.BufferReader:
        return io.BytesIO(data) if compression else pa.BufferReader(data)

    try:
        return pd.read_csv(source(), engine="pyarrow", compression=compression)
    except Exception:  # noqa: BLE001 - any refusal: fall back to the reference parser
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            return pd.read_csv(source(), low_memory=False, compression=compression)


def _parse_timestamps(col: pd.Series, name: str) -> pd.Series:
    """ISO strings (any offset) or epoch seconds/milliseconds -> datetime64[ns, UTC]."""
    if col.isna().any():
        raise DataError(f"{name} line {_line_of(col.isna())} has an empty 'timestamp'; fill it "
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


def _choose_features(raw: pd.DataFrame, name: str, target: str, configured: list[str] | None,
                     notes: list[str]) -> list[str]:
    """The configured list as given, else every numeric column that is not a key, the target or
    a raw price (raw prices are not stationary across symbols and time)."""
    if configured is not None:
        chosen = [str(c).strip() for c in configured]
        missing = [c for c in chosen if c not in raw.columns]
        if missing:
            raise DataError(f"Feature column '{missing[0]}' is not in {name}; fix the feature "
                            "list or add the column "
                            f"({len(missing)} missing: {_short_list(missing)}).")
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
        notes.append(f"ignored non-numeric column(s): {_short_list(text)}")
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


def _numeric_feature(col: pd.Series, name: str, column: str,
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
    raise DataError(f"Column '{column}' in {name} is not numeric at line {_line_of(bad)}: "
                    f"{example!r}; fix that cell (or set QT_CLM_COERCE_BAD_CELLS=true to treat "
                    "such cells as empty).")


def _binary_target(col: pd.Series, name: str, target: str) -> pd.Series:
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
                            f"{_line_of(bad)} holds {str(col[bad].iloc[0])[:40]!r}; fix the "
                            "labels or drop the column to derive it from 'close'.")
        return mapped
    values = col.astype("float64")
    bad = values.notna() & ~values.isin([0.0, 1.0])
    if bad.any():
        raise DataError(f"Target column '{target}' in {name} must hold 0/1 values but line "
                        f"{_line_of(bad)} holds {col[bad].iloc[0]!r}; fix the labels or drop "
                        "the column to derive it from 'close'.")
    return values


def _derive_target(ts: np.ndarray, codes: np.ndarray, close: np.ndarray) -> np.ndarray:
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


def _line_of(mask: pd.Series) -> int:
    """File line of the first flagged row (header is line 1), for CSV users."""
    return int(mask.index[mask.to_numpy()][0]) + 2


def _short_list(items) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
