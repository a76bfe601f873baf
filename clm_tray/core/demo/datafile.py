"""Demo data files: written, read back and appended to the way the trader's collector does it.

Apart from the market process because the file format is a job of its own: CSV with ISO-8601
UTC timestamps and floats cut to 8 significant digits (or Parquet, by suffix), every write
atomic or fsynced so a reader never sees half a file, and one clear line for a file that is
not demo data.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from clm_tray.core.demo.generator import COLUMNS
from clm_tray.core.errors import DataError
from clm_tray.core.fsutil import atomic_write_bytes, fsync_dir

_DIGITS = 8  # significant digits kept in CSV files


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def save(frame: pd.DataFrame, path: Path | str) -> None:
    """Write demo data atomically as CSV or Parquet (by suffix), in the format `feed` appends."""
    path = Path(path)
    if is_parquet(path):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_bytes(path, csv_bytes(frame, header=True))


def csv_bytes(frame: pd.DataFrame, header: bool) -> bytes:
    """CSV with ISO-8601 UTC timestamps and floats kept to 8 significant digits; written by
    pyarrow because pandas' float formatting is ~10x slower on the 136,500-row demo."""
    stamps = frame["timestamp"].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    out = {"timestamp": np.char.add(np.datetime_as_string(stamps, unit="s"), "Z")}
    for col in frame.columns[1:]:
        values = frame[col].to_numpy()
        out[col] = _significant(values) if values.dtype.kind == "f" else values
    table = pa.Table.from_pydict({k: pa.array(v) for k, v in out.items()})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    head = (",".join(map(str, frame.columns)) + "\n").encode() if header else b""
    return head + sink.getvalue().to_pybytes()


def _significant(values: np.ndarray, digits: int = _DIGITS) -> np.ndarray:
    """Round to `digits` significant digits so the CSV stays compact."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
    exponent = np.where(np.isfinite(exponent), exponent, 0.0)
    scale = 10.0 ** (digits - 1 - exponent)
    return np.round(values * scale) / scale


def read_demo_file(path: Path) -> pd.DataFrame:
    """A demo file to continue; a missing, unreadable or foreign file is one clear line."""
    if not path.exists():
        raise DataError(f"Demo data file {path} does not exist; create it with "
                        "`clm-tray demo` (or demo.generate + demo.save) before feeding it.")
    try:
        if is_parquet(path):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(f"Demo data file {path} cannot be read for feeding ({exc}); "
                        "regenerate it with `clm-tray demo`.") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        raise DataError(f"Demo data file {path} lacks the demo columns {missing or COLUMNS}; "
                        "feed only appends to files made by the demo generator.")
    return frame


def append_csv(path: Path, data: bytes) -> None:
    """Append rows in place (the collector's way), then fsync so a reader never sees half."""
    with open(path, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                data = b"\n" + data
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(path.parent)
