"""Read the training file fast: an append-only CSV is parsed only where it grew.

A trader's collector appends bars to one CSV all day; re-parsing the whole file every cycle
(and every drift / performance check) costs more than the rest of a small cycle. So the rows
already parsed are kept as an Arrow IPC file in the model store (``<store>/cache/``), keyed by
the data file's path. On the next read the file is hashed once, in one pass: when the bytes the
cache was built from are still the file's first bytes (same sha256 of that prefix — size and
mtime alone prove nothing), only the new tail is parsed and appended; anything else (an edited
or truncated file, a corrupt or unreadable cache) is a full parse that rebuilds the cache.

Only complete lines are cached: a last line the collector is still writing is parsed on every
read but never stored, so finishing it later cannot leave a stale row behind. Parquet files are
read directly (no cache needed), only the columns the data checks use, and hashed while read.

The cache is invisible to users except for speed: a cache that cannot be read or written is
logged and ignored, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from clm_tray.core.fsutil import atomic_write_text

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_CHUNK = 8 * 1024 * 1024


@dataclass
class ReadInfo:
    """How the last read went (observable by tests and the log): ``mode`` is ``"full"``
    (whole file parsed), ``"tail"`` (only new rows parsed), ``"cached"`` (nothing new) or
    ``"direct"`` (Parquet / compressed input, no cache)."""

    mode: str = ""
    parsed_rows: int = 0
    cached_rows: int = 0


#: The most recent read in this process.
last_read = ReadInfo()


def cache_paths(cache_dir: Path, data_path: Path) -> tuple[Path, Path]:
    """(table, meta) files of ``data_path``'s cache: keyed by the resolved path."""
    key = hashlib.sha256(str(data_path.resolve()).encode("utf-8")).hexdigest()[:24]
    return cache_dir / f"{key}.arrow", cache_dir / f"{key}.json"


def read_csv_cached(path: Path, cache_dir: Path,
                    parse: Callable[[bytes], pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """The raw frame of an uncompressed CSV plus the sha256 of the whole file.

    ``parse`` turns CSV bytes (a header line first) into a raw frame; it is the same parser a
    full read uses, so a frame assembled from cache + tail equals a full parse.
    """
    global last_read
    data = path.read_bytes()
    view = memoryview(data)
    complete = data.rfind(b"\n") + 1  # bytes up to the end of the last complete line
    table_file, meta_file = cache_paths(cache_dir, path)
    meta = _read_meta(meta_file, path)

    # One pass over the bytes: the cached prefix's hash, the new prefix's hash, the file's.
    digest = hashlib.sha256()
    start = int(meta["prefix_bytes"]) if meta else 0
    prefix_ok = False
    if meta and 0 < start <= complete:
        _update(digest, view[:start])
        prefix_ok = digest.copy().hexdigest() == meta["prefix_sha256"]
    else:
        start = 0
    _update(digest, view[start:complete])
    complete_sha = digest.copy().hexdigest()
    _update(digest, view[complete:])
    sha256 = digest.hexdigest()

    cached = _read_table(table_file, int(meta["rows"])) if prefix_ok and meta else None
    header = bytes(view[:data.find(b"\n") + 1]) if complete else b""
    if cached is not None:
        tail = parse(header + bytes(view[start:complete])) if complete > start else None
        parts = [cached] if tail is None else [cached, tail]
        body = pd.concat(parts, ignore_index=True) if len(parts) > 1 else cached
        last_read = ReadInfo("tail" if tail is not None else "cached",
                             0 if tail is None else len(tail), len(cached))
    else:
        body = parse(bytes(view[:complete])) if complete else None
        last_read = ReadInfo("full", 0 if body is None else len(body), 0)
    if body is not None and (cached is None or last_read.mode == "tail"):
        _write_cache(table_file, meta_file, path, body, complete, complete_sha)

    partial = bytes(view[complete:])
    if partial.strip():  # a line still being written: read now, never cached
        rest = parse(header + partial) if body is not None else parse(partial)
        last_read.parsed_rows += len(rest)
        body = rest if body is None else pd.concat([body, rest], ignore_index=True)
    if body is None:
        body = parse(data)  # no complete line at all: let the parser say what is wrong
    if last_read.mode != "full":
        log.info("%s: %s new rows parsed, %s from the cache", path.name,
                 f"{last_read.parsed_rows:,}", f"{last_read.cached_rows:,}")
    return body, sha256


def _update(digest: hashlib._Hash, view: memoryview) -> None:
    for i in range(0, len(view), _CHUNK):
        digest.update(view[i:i + _CHUNK])


def _read_meta(meta_file: Path, path: Path) -> dict | None:
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION or meta.get("path") != str(path.resolve()):
            return None
        int(meta["prefix_bytes"]), int(meta["rows"]), str(meta["prefix_sha256"])
        return meta
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _read_table(table_file: Path, rows: int) -> pd.DataFrame | None:
    """The cached rows, or None when the cache is missing, corrupt or not what meta says."""
    try:
        with pa.memory_map(str(table_file), "r") as source:
            table = ipc.open_file(source).read_all()
        frame = table.to_pandas()
    except (OSError, pa.ArrowException, ValueError) as exc:
        log.warning("data cache %s is unreadable (%s); parsing the whole file", table_file, exc)
        return None
    if len(frame) != rows:
        log.warning("data cache %s holds %d rows, not %d; parsing the whole file",
                    table_file, len(frame), rows)
        return None
    return frame


def _write_cache(table_file: Path, meta_file: Path, path: Path, frame: pd.DataFrame,
                 prefix_bytes: int, prefix_sha256: str) -> None:
    """Table first, then meta (atomically): a crash in between leaves a meta that does not
    match the table's row count, which the next read detects."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = table_file.with_name(f".{table_file.name}.{os.getpid()}.tmp")
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, table_file)
        atomic_write_text(meta_file, json.dumps({
            "version": CACHE_VERSION, "path": str(path.resolve()), "rows": len(frame),
            "prefix_bytes": prefix_bytes, "prefix_sha256": prefix_sha256,
        }))
    except (OSError, pa.ArrowException, ValueError, TypeError) as exc:
        # e.g. a column of mixed values Arrow cannot type: no cache, the next read parses all
        log.info("data cache not written for %s: %s", path.name, exc)
        with contextlib.suppress(OSError, UnboundLocalError):
            tmp.unlink()


def sha256_file(path: Path) -> str:
    """The file's sha256, read in chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_parquet_projected(path: Path, keep: Callable[[list[str]], list[str]]) -> pd.DataFrame:
    """Only the columns ``keep`` chooses from the file's schema, with one pandas column per
    Arrow column (``split_blocks``) built while Arrow's copy is released (``self_destruct``):
    peak memory is about one copy of the kept columns, not two or three. String columns come
    back as categoricals (one object per distinct symbol, not per row)."""
    import pyarrow.parquet as pq

    global last_read
    schema = pq.read_schema(path)
    columns = keep(list(schema.names))
    strings = [c for c in columns
               if pa.types.is_string(schema.field(c).type)
               or pa.types.is_large_string(schema.field(c).type)]
    # One column at a time, float64 narrowed to float32 as it arrives (the features end as
    # float32 anyway): the largest transient is one column, not a second copy of the file.
    source = pq.ParquetFile(path, read_dictionary=strings or None)
    arrays = []
    for col in columns:
        array = source.read(columns=[col]).column(0)
        if pa.types.is_float64(array.type) and col not in ("timestamp", "close"):
            array = array.cast(pa.float32())
        arrays.append(array)
    table = pa.table(arrays, names=columns)
    del arrays
    last_read = ReadInfo("direct", table.num_rows, 0)
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed memory otherwise
    for col in strings:  # categorical -> plain labels, as a CSV read gives them
        if isinstance(frame[col].dtype, pd.CategoricalDtype) and col != "symbol":
            frame[col] = frame[col].astype(object)
    return frame
