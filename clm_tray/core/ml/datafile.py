"""Read the training file into a raw frame: CSV (any compression, any encoding), Parquet, or a
folder of Parquet files, hashed while it is read.

The first half of loading data: bytes to columns, nothing judged yet (``columns.py`` and
``labels.py`` judge them). Every way a file can fail to be read (missing, empty, an unknown
type, not UTF-8, a cut archive, a corrupt Parquet footer) is one ``DataError`` sentence naming
the file and what to do. The sha256 of exactly the bytes parsed goes into the fingerprint, so a
version says what it was trained on; an append-only CSV is parsed only where it grew
(``datacache.py``).
"""

from __future__ import annotations

import hashlib
import io
import warnings as _warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa

from clm_tray.core.errors import DataError
from clm_tray.core.ml import datacache

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".txt", ".gz", ".bz2", ".zip", ".xz", ".zst")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}


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


def read_data_file(path: Path, cache_dir: Path | None = None,
                   keep: Callable[[list[str]], list[str]] | None = None,
                   encoding: str | None = None) -> tuple[pd.DataFrame, str]:
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
