"""Loading the trader's training data: every bad input is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import FEATURES, generate
from clm_tray.core.errors import DataError
from clm_tray.core.ml.data import load_dataset


def _frame(rows: int = 300, symbols: int = 3) -> pd.DataFrame:
    """A tiny labelled dataset: timestamp, symbol, two features, target."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2025-01-01", periods=rows // symbols, freq="h", tz="UTC")
    frame = pd.DataFrame({
        "timestamp": np.repeat(times, symbols),
        "symbol": np.tile([f"S{i}USDT" for i in range(symbols)], len(times)),
        "f1": rng.normal(size=len(times) * symbols),
        "f2": rng.normal(size=len(times) * symbols),
        "target": rng.integers(0, 2, size=len(times) * symbols),
    })  # fmt: skip
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


def test_labelled_csv_loads_sorted_with_fingerprint(tmp_path: Path) -> None:
    frame = _frame().sample(frac=1.0, random_state=1)  # shuffled on disk
    path = _write(frame, tmp_path / "train.csv")
    ds = load_dataset(path)
    assert ds.features == ["f1", "f2"]
    assert ds.target == "target"
    assert list(ds.frame.columns) == ["timestamp", "symbol", "f1", "f2", "target"]
    assert str(ds.frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert ds.frame.index.equals(pd.RangeIndex(len(ds.frame)))
    keys = list(zip(ds.frame["timestamp"], ds.frame["symbol"], strict=True))
    assert keys == sorted(keys)
    assert ds.X.dtype == np.float32 and ds.X.shape == (300, 2)
    assert set(np.unique(ds.y)) <= {0, 1}
    fp = ds.fingerprint
    assert (fp.rows, fp.symbols) == (300, 3)
    assert fp.start == "2025-01-01T00:00:00+00:00" and fp.end == "2025-01-05T03:00:00+00:00"
    assert len(fp.sha256) == 64 and fp.path == str(path.resolve())
    assert ds.warnings == [] and ds.inf_count == 0 and ds.duplicates_dropped == 0


def test_parquet_loads_like_csv(tmp_path: Path) -> None:
    frame = _frame()
    csv = load_dataset(_write(frame, tmp_path / "a.csv"))
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    parquet = load_dataset(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(csv.frame, parquet.frame)


def test_parquet_with_a_dictionary_symbol_column_loads_like_csv(tmp_path: Path) -> None:
    """Symbols stored as a dictionary (categories out of order, one never used) are coded from
    their few categories, not one text per row, and give the same rows as the CSV."""
    frame = _frame()
    csv = load_dataset(_write(frame, tmp_path / "a.csv"))
    stored = frame.copy()
    used = sorted(stored["symbol"].unique())
    stored["symbol"] = pd.Categorical(stored["symbol"], categories=["ZZUNUSED", *used[::-1]])
    stored.to_parquet(tmp_path / "a.parquet", index=False)
    parquet = load_dataset(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(csv.frame, parquet.frame)
    assert parquet.fingerprint.symbols == len(used)


def test_target_derived_from_close_per_symbol(tmp_path: Path) -> None:
    frame = _frame(rows=300).drop(columns="target")
    frame["close"] = np.tile([1.0, 2.0, 1.5, 3.0], 75)
    frame.loc[frame["symbol"] == "S1USDT", "close"] = np.arange(100.0)  # always rising
    frame["open"] = frame["close"]
    ds = load_dataset(_write(frame, tmp_path / "prices.csv"))
    assert ds.features == ["f1", "f2"]  # raw prices are never features
    assert len(ds.frame) == 300 - 3  # each symbol's last bar has no next bar
    rising = ds.frame[ds.frame["symbol"] == "S1USDT"]
    assert rising["target"].eq(1).all() and len(rising) == 99
    assert ds.frame["timestamp"].max() < frame["timestamp"].max()


def test_derived_target_matches_next_close(tmp_path: Path) -> None:
    frame = generate(symbols=4, bars=120, seed=3)
    save(frame, tmp_path / "demo.csv")
    ds = load_dataset(tmp_path / "demo.csv")
    assert ds.features == FEATURES
    for symbol, rows in frame.groupby("symbol"):
        expected = (rows["close"].shift(-1) > rows["close"]).astype(int).iloc[:-1].to_numpy()
        got = ds.frame.loc[ds.frame["symbol"] == symbol, "target"].to_numpy()
        np.testing.assert_array_equal(got, expected)


def test_duplicate_rows_are_dropped_with_a_warning(tmp_path: Path) -> None:
    frame = _frame()
    path = _write(pd.concat([frame, frame.iloc[:12]]), tmp_path / "dups.csv")
    ds = load_dataset(path)
    assert ds.duplicates_dropped == 12 and len(ds.frame) == 300
    assert "dropped 12 duplicate (symbol, timestamp) rows" in ds.warnings


def test_infinities_become_nan_and_are_counted(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[[3, 7], "f1"] = np.inf
    frame.loc[9, "f2"] = -np.inf
    ds = load_dataset(_write(frame, tmp_path / "inf.csv"))
    assert ds.inf_count == 3
    assert np.isnan(ds.X).sum() == 3 and not np.isinf(ds.X).any()
    assert any("infinite" in w for w in ds.warnings)


def test_epoch_seconds_and_milliseconds_parse_to_utc(tmp_path: Path) -> None:
    frame = _frame()
    expected = load_dataset(_write(frame, tmp_path / "iso.csv")).frame["timestamp"]
    seconds = frame.assign(timestamp=frame["timestamp"].astype("int64") // 10**9)
    millis = frame.assign(timestamp=frame["timestamp"].astype("int64") // 10**6)
    for name, variant in (("s.csv", seconds), ("ms.csv", millis)):
        got = load_dataset(_write(variant, tmp_path / name)).frame["timestamp"]
        pd.testing.assert_series_equal(got, expected)


def test_iso_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    frame = _frame()
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("Europe/Oslo").astype(str)
    ds = load_dataset(_write(frame, tmp_path / "oslo.csv"))
    assert ds.fingerprint.start == "2025-01-01T00:00:00+00:00"


def test_configured_features_keep_their_order(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "train.csv")
    assert load_dataset(path, features=["f2", "f1"]).features == ["f2", "f1"]
    assert load_dataset(path, features=["f2"]).X.shape == (300, 1)


def test_custom_target_name(tmp_path: Path) -> None:
    path = _write(_frame().rename(columns={"target": "up"}), tmp_path / "up.csv")
    ds = load_dataset(path, target="up")
    assert ds.target == "up" and ds.features == ["f1", "f2"]


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    assert "does not exist" in _one_line_error(tmp_path / "nowhere.csv")


def test_empty_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert "empty" in _one_line_error(path)


def test_header_only_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("timestamp,symbol,f1,target\n")
    assert "no data rows" in _one_line_error(path)


def test_missing_target_and_close_is_one_line_error(tmp_path: Path) -> None:
    path = _write(_frame().drop(columns="target"), tmp_path / "nolabel.csv")
    message = _one_line_error(path)
    assert "'target'" in message and "'close'" in message


def test_text_feature_is_one_line_error(tmp_path: Path) -> None:
    frame = _frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[5, "f2"] = "12,5 USDT"
    path = _write(frame, tmp_path / "text.csv")
    message = _one_line_error(path, features=["f1", "f2"])
    assert "'f2'" in message and "not numeric" in message and "line 7" in message


def test_unlisted_text_column_is_ignored_with_a_warning(tmp_path: Path) -> None:
    frame = _frame().assign(exchange="binance")
    ds = load_dataset(_write(frame, tmp_path / "extra.csv"))
    assert ds.features == ["f1", "f2"]
    assert any("exchange" in w for w in ds.warnings)


def test_missing_configured_feature_is_one_line_error(tmp_path: Path) -> None:
    path = _write(_frame(), tmp_path / "train.csv")
    assert "'f9'" in _one_line_error(path, features=["f1", "f9"])


def test_all_nan_column_is_one_line_error(tmp_path: Path) -> None:
    path = _write(_frame().assign(f2=np.nan), tmp_path / "nan.csv")
    assert "'f2'" in _one_line_error(path)


def test_too_few_rows_is_one_line_error(tmp_path: Path) -> None:
    path = _write(_frame(rows=60), tmp_path / "small.csv")
    message = _one_line_error(path)
    assert "60" in message and "200" in message
    assert len(load_dataset(path, min_rows=50).frame) == 60


def test_unparseable_timestamp_is_one_line_error(tmp_path: Path) -> None:
    frame = _frame()
    frame["timestamp"] = frame["timestamp"].astype(str)
    frame.loc[4, "timestamp"] = "yesterday-ish"
    message = _one_line_error(_write(frame, tmp_path / "dates.csv"))
    assert "'timestamp'" in message and "yesterday-ish" in message


def test_empty_timestamp_is_one_line_error(tmp_path: Path) -> None:
    frame = _frame()
    frame["timestamp"] = frame["timestamp"].astype(object)
    frame.loc[10, "timestamp"] = None
    assert "line 12" in _one_line_error(_write(frame, tmp_path / "gap.csv"))


def test_non_binary_target_is_one_line_error(tmp_path: Path) -> None:
    frame = _frame().astype({"target": float})
    frame.loc[8, "target"] = 2.0
    assert "0/1" in _one_line_error(_write(frame, tmp_path / "labels.csv"))


def test_boolean_target_is_accepted(tmp_path: Path) -> None:
    frame = _frame()
    frame["target"] = frame["target"].astype(bool)
    ds = load_dataset(_write(frame, tmp_path / "bool.csv"))
    assert ds.frame["target"].dtype == np.int64 and set(ds.frame["target"]) <= {0, 1}


def test_garbage_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b'timestamp,symbol,f1\n"2025-01-01,BTC,1\n' + b"\xff\xfe\x00" * 50)
    _one_line_error(path)
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 not really")
    assert "Parquet" in _one_line_error(parquet)


def test_missing_symbol_column_is_one_line_error(tmp_path: Path) -> None:
    path = _write(_frame().drop(columns="symbol"), tmp_path / "nosym.csv")
    assert "'symbol'" in _one_line_error(path)


def test_reference_size_loads_quickly(tmp_path: Path) -> None:
    """The reference shape (136,500 rows) must load fast enough for a cycle; the figure is
    printed by bench/demo_signal.py, here we only guard against a gross regression."""
    import time

    path = tmp_path / "demo.csv"
    save(generate(symbols=91, bars=1500, seed=7), path)
    started = time.perf_counter()
    ds = load_dataset(path)
    elapsed = time.perf_counter() - started
    assert len(ds.frame) == 91 * 1499
    assert elapsed < 10.0  # well under 1 s on an idle 2-core machine; generous for loaded CI


def test_a_bad_cell_in_a_numeric_column_is_one_line_error_naming_column_line_and_value(
        tmp_path: Path) -> None:
    """Auto-chosen features: the column stays a feature, so the feature set never changes."""
    frame = _frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[9, "f2"] = "n/a?"
    message = _one_line_error(_write(frame, tmp_path / "glitch.csv"))
    assert "'f2'" in message and "line 11" in message and "'n/a?'" in message
    assert "QT_CLM_COERCE_BAD_CELLS" in message


def test_coerced_bad_cells_become_empty_and_are_counted(tmp_path: Path) -> None:
    frame = _frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[[3, 9], "f2"] = "#VALUE!"
    ds = load_dataset(_write(frame, tmp_path / "glitch.csv"), coerce_bad_cells=True)
    assert ds.features == ["f1", "f2"]
    assert int(np.isnan(ds.frame["f2"]).sum()) == 2
    assert any("2 non-numeric cell(s)" in w and "f2: 2" in w for w in ds.warnings)
