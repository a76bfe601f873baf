"""The data cache: an append-only CSV is parsed only where it grew, and never trusted blindly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.feed import feed
from clm_tray.core.demo.generator import generate
from clm_tray.core.ml import datacache
from clm_tray.core.ml.data import load_dataset


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    return write_small_data(tmp_path / "data" / "train.csv", symbols=4, bars=300)


def load(path: Path, cache: Path | None):
    return load_dataset(path, cache_dir=cache)


def test_appended_rows_are_the_only_rows_parsed_and_give_the_same_frame(csv, tmp_path):
    cache = tmp_path / "cache"
    first = load(csv, cache)
    assert datacache.last_read.mode == "full"
    assert datacache.last_read.parsed_rows == 4 * 300

    feed(csv, hours=5)  # the collector appends 5 bars for each of the 4 symbols
    grown = load(csv, cache)
    assert (datacache.last_read.mode, datacache.last_read.parsed_rows,
            datacache.last_read.cached_rows) == ("tail", 20, 1200)
    full = load(csv, None)  # a full parse of the same file, no cache
    pd.testing.assert_frame_equal(grown.frame, full.frame)
    assert grown.fingerprint == full.fingerprint  # the sha256 of the whole file, too
    assert grown.fingerprint.rows > first.fingerprint.rows

    load(csv, cache)  # nothing new
    assert (datacache.last_read.mode, datacache.last_read.parsed_rows) == ("cached", 0)


def test_an_edited_prefix_is_noticed_by_its_hash_and_parsed_in_full(csv, tmp_path):
    cache = tmp_path / "cache"
    load(csv, cache)
    lines = csv.read_bytes().split(b"\n")
    cells = lines[5].split(b",")
    cells[3] = b"9" * len(cells[3])  # same size, same line count: only the bytes differ
    lines[5] = b",".join(cells)
    csv.write_bytes(b"\n".join(lines))
    edited = load(csv, cache)
    assert datacache.last_read.mode == "full"
    pd.testing.assert_frame_equal(edited.frame, load(csv, None).frame)


def test_a_corrupt_cache_is_rebuilt(csv, tmp_path):
    cache = tmp_path / "cache"
    expected = load(csv, cache).frame
    table, _meta = datacache.cache_paths(cache, csv)
    table.write_bytes(b"not arrow at all")
    again = load(csv, cache)
    assert datacache.last_read.mode == "full"
    pd.testing.assert_frame_equal(again.frame, expected)
    load(csv, cache)
    assert datacache.last_read.mode == "cached"  # the rebuilt cache is used again


def test_a_line_still_being_written_is_read_but_never_cached(csv, tmp_path):
    cache = tmp_path / "cache"
    load(csv, cache)
    lines = csv.read_bytes().rstrip(b"\n").split(b"\n")
    last = lines[-1]
    # Append one complete bar in two writes, like a collector caught half-way.
    newer = last.split(b",")
    newer[0] = b"2099-01-01T00:00:00Z"
    row = b",".join(newer)
    with csv.open("ab") as fh:
        fh.write(row[: len(row) // 2 + 5])
    load(csv, cache)
    with csv.open("ab") as fh:
        fh.write(row[len(row) // 2 + 5:] + b"\n")
    finished = load(csv, cache)
    pd.testing.assert_frame_equal(finished.frame, load(csv, None).frame)


def test_parquet_is_read_directly_and_only_the_needed_columns(tmp_path):
    src = write_small_data(tmp_path / "train.csv", symbols=4, bars=300)
    frame = pd.read_csv(src)
    frame["notes"] = "free text the model never uses"
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, index=False)
    ds = load_dataset(path, cache_dir=tmp_path / "cache", features=["funding_rate"])
    assert datacache.last_read.mode == "direct"
    assert list(ds.frame.columns) == ["timestamp", "symbol", "funding_rate", "target"]
    full = load_dataset(src, features=["funding_rate"])
    pd.testing.assert_frame_equal(ds.frame, full.frame)
    assert not (tmp_path / "cache").exists()  # nothing to cache for Parquet


def write_small_data(path, symbols=6, bars=400):
    """Small demo data (tests/conftest.py has the same helper; several conftest modules
    make ``from conftest import`` ambiguous)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save(generate(symbols=symbols, bars=bars, seed=7), path)
    return path
