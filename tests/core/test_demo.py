"""Demo data: deterministic, realistic in shape, and able to grow (and drift) like real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_tray.core.demo import generator
from clm_tray.core.demo.coins import symbol_names
from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.feed import feed
from clm_tray.core.demo.generator import COLUMNS, FEATURES, generate
from clm_tray.core.demo.sample import write_sample
from clm_tray.core.errors import DataError
from clm_tray.core.ml.data import load_dataset

END = pd.Timestamp("2025-06-01 12:00", tz="UTC")


def _psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index on quantile bins of `expected` (independent of monitor.py)."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def test_generate_has_the_documented_columns() -> None:
    frame = generate(symbols=5, bars=50, seed=1, end=END)
    assert list(frame.columns) == COLUMNS
    assert len(FEATURES) == 22 and "target" not in frame.columns
    assert len(frame) == 250 and frame["symbol"].nunique() == 5
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].max() == END
    assert frame["timestamp"].min() == END - pd.Timedelta(hours=49)
    assert frame[FEATURES].notna().all().all()
    keys = list(zip(frame["timestamp"], frame["symbol"], strict=True))
    assert keys == sorted(keys)
    assert symbol_names(3) == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert len(set(symbol_names(91))) == 91
    assert len(set(symbol_names(120))) == 120


def test_generate_is_deterministic_and_end_only_moves_the_clock() -> None:
    a = generate(symbols=6, bars=80, seed=11, end=END)
    b = generate(symbols=6, bars=80, seed=11, end=END)
    pd.testing.assert_frame_equal(a, b)
    later = generate(symbols=6, bars=80, seed=11, end=END + pd.Timedelta(days=3))
    pd.testing.assert_frame_equal(a.drop(columns="timestamp"), later.drop(columns="timestamp"))
    other = generate(symbols=6, bars=80, seed=12, end=END)
    assert not np.allclose(a["close"], other["close"])


def test_the_autoregressive_series_match_what_scipy_made() -> None:
    """The demo's AR(1) series were scipy.signal.lfilter; the numpy loop that replaced it must
    give the same numbers, so every demo workspace and figure stays as it was. The values were
    computed once with SciPy 1.17.1 (lfilter([1], [1, -phi], u, axis=0, zi=phi * start))."""
    u = np.array([[0.5, -1.25, 2.0], [-0.75, 0.125, 1.5], [1.0, 0.25, -2.5], [0.3, -0.6, 0.9]])
    start = np.array([0.1, -0.2, 3.0])
    by_scipy = {
        0.9: [[0.59, -1.43, 4.7], [-0.21899999999999997, -1.162, 5.73],
              [0.8029000000000001, -0.7958000000000001, 2.657000000000001],
              [1.02261, -1.31622, 3.291300000000001]],
        0.998: [[0.5998, -1.4496, 4.994], [-0.15139959999999997, -1.3217008, 6.484012],
                [0.8489031992, -1.0690573983999998, 3.971043976],
                [1.1472053928016, -1.6669192836031996, 4.863101888048]],
    }
    for phi, expected in by_scipy.items():
        np.testing.assert_allclose(generator._ar1(u, phi, start), expected, rtol=0, atol=1e-12)
    # And through the whole generator: the last bar of one symbol, as the SciPy version made it.
    frame = generate(symbols=5, bars=300, seed=3, end=END)
    last = frame[frame["symbol"] == "BNBUSDT"].iloc[-1]
    made_with_scipy = {"volume": 2317263.0692985468, "funding_rate": 6.834318848107617e-05,
                       "shortAccount": 0.5054533039134802, "open_interest": 240306196.03110522}
    for column, value in made_with_scipy.items():
        assert last[column] == pytest.approx(value, rel=1e-9), column


def test_generate_looks_like_a_market() -> None:
    frame = generate(symbols=20, bars=400, seed=5, end=END)
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert frame["rsi_14"].between(0, 100).all()
    assert np.allclose(frame["longAccount"] + frame["shortAccount"], 1.0)
    assert frame["taker_buy_ratio"].between(0, 1).all() and (frame["volume"] > 0).all()
    ret = frame["ret_1"]
    assert ret.kurt() > 3  # fat tails: excess kurtosis well above the normal's 0
    assert 0.47 < (frame.groupby("symbol")["close"].diff() > 0).mean() < 0.53
    vol = frame.groupby("timestamp")["vol_24"].median()
    assert vol.max() / vol.min() > 2  # volatility regimes


def test_features_are_trailing_windows_of_the_closes() -> None:
    """Features are computed from the current and past bars only (recomputed here from the
    output's own closes), so the label cannot leak into them."""
    full = generate(symbols=4, bars=200, seed=9, end=END)
    one_symbol = full[full["symbol"] == "ETHUSDT"].reset_index(drop=True)
    c = one_symbol["close"]
    tail = slice(30, None)
    np.testing.assert_allclose(one_symbol["ret_3"][tail], c.pct_change(3)[tail], rtol=1e-9)
    np.testing.assert_allclose(one_symbol["vol_24"][tail],
                               c.pct_change().rolling(24).std()[tail], rtol=1e-9)
    mid, sd = c.rolling(20).mean(), c.rolling(20).std()
    np.testing.assert_allclose(one_symbol["bb_pos"][tail], ((c - mid + 2 * sd) / (4 * sd))[tail],
                               rtol=1e-9)


def test_save_writes_csv_and_parquet_the_loader_reads(tmp_path: Path) -> None:
    frame = generate(symbols=3, bars=100, seed=2, end=END)
    for name in ("d.csv", "d.parquet"):
        save(frame, tmp_path / name)
        ds = load_dataset(tmp_path / name)
        assert ds.features == FEATURES and len(ds.frame) == 3 * 99


def test_feed_appends_hours_times_symbols_rows_without_gaps(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    save(generate(symbols=5, bars=150, seed=4, end=END), path)
    header = path.read_text().splitlines()[0]
    assert feed(path, 24) == 24 * 5
    after = pd.read_csv(path)
    assert path.read_text().splitlines()[0] == header and len(after) == 150 * 5 + 24 * 5
    after["timestamp"] = pd.to_datetime(after["timestamp"], utc=True)
    for _, rows in after.groupby("symbol"):
        steps = rows["timestamp"].diff().dropna().unique()
        assert list(steps) == [pd.Timedelta(hours=1)]
    assert after["timestamp"].max() == END + pd.Timedelta(hours=24)
    assert not after.duplicated(["symbol", "timestamp"]).any()
    assert after[FEATURES].notna().all().all()
    new = after.iloc[750:]
    first = new.groupby("symbol").head(1).set_index("symbol")
    last_old = after.iloc[:750].groupby("symbol").tail(1).set_index("symbol")
    np.testing.assert_allclose(first["open"], last_old.loc[first.index, "close"], rtol=1e-7)
    assert len(load_dataset(path).frame) == (150 + 24 - 1) * 5


def test_feed_is_deterministic_given_seed_and_rows(tmp_path: Path) -> None:
    frame = generate(symbols=3, bars=130, seed=4, end=END)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    save(frame, a)
    save(frame, b)
    feed(a, 10)
    feed(b, 10)
    assert a.read_bytes() == b.read_bytes()


def test_feed_parquet_rewrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "demo.parquet"
    save(generate(symbols=3, bars=130, seed=4, end=END), path)
    assert feed(path, 5) == 15
    back = pd.read_parquet(path)
    assert len(back) == 3 * 135 and back["timestamp"].is_monotonic_increasing


def test_feed_continues_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    save(generate(symbols=10, bars=300, seed=6, end=END), path)
    feed(path, 200)
    frame = pd.read_csv(path)
    old, new = frame.iloc[:3000], frame.iloc[3000:]
    for col in ("funding_rate", "shortAccount", "taker_buy_ratio", "volume_z", "oi_change_1"):
        assert _psi(old[col].to_numpy(), new[col].to_numpy()) < 0.25, col


def test_feed_shift_moves_the_distribution(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    save(generate(symbols=10, bars=300, seed=6, end=END), path)
    feed(path, 100, shift=True)
    frame = pd.read_csv(path)
    old, new = frame.iloc[:3000], frame.iloc[3000:]
    for col in ("funding_rate", "shortAccount"):
        assert _psi(old[col].to_numpy(), new[col].to_numpy()) > 0.5, col
    assert _psi(old["volume"].to_numpy(), new["volume"].to_numpy()) > 0.2
    assert new["vol_24"].mean() > 1.3 * old["vol_24"].mean()


def test_feed_needs_an_existing_demo_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        feed(tmp_path / "missing.csv", 5)
    assert "missing.csv" in str(info.value) and "\n" not in str(info.value)
    other = tmp_path / "other.csv"
    other.write_text("timestamp,symbol,x\n2025-01-01T00:00:00Z,BTCUSDT,1\n")
    with pytest.raises(DataError):
        feed(other, 5)


def test_sample_is_reproducible(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[2] / "data" / "sample.csv"
    fresh = write_sample(tmp_path / "sample.csv")
    assert fresh.stat().st_size < 2_000_000
    if committed.exists():
        assert fresh.read_bytes() == committed.read_bytes()


def test_demo_signal_is_real_but_weak() -> None:
    """A shallow model beats the coin flip out-of-time, but only by a few points (a leak would
    show as far more). The full-size figure (~55 %) is printed by bench/demo_signal.py."""
    from xgboost import XGBClassifier

    frame = generate(symbols=40, bars=600, seed=7, end=END)
    frame["target"] = (frame.groupby("symbol")["close"].shift(-1) > frame["close"]).astype(int)
    frame = frame[frame["timestamp"] < END]
    cut = frame["timestamp"].quantile(0.7)
    train, test = frame[frame["timestamp"] < cut], frame[frame["timestamp"] >= cut]
    model = XGBClassifier(tree_method="hist", n_estimators=60, max_depth=3, learning_rate=0.1,
                          n_jobs=1, random_state=0)
    model.fit(train[FEATURES], train["target"])
    accuracy = float((model.predict(test[FEATURES]) == test["target"]).mean())
    assert 0.515 < accuracy < 0.62
