"""Demo market data: a deterministic stand-in for a Binance futures collector.

The demo must behave like the trader's real data or nothing downstream is tested honestly:
hourly bars for many USDT perpetuals, volatility that comes in regimes, fat-tailed returns,
and a weak but real signal (crowd positioning, funding and order flow nudge the next bar), so a
good model scores a few points above a coin flip out-of-time and a leak stands out.
`feed` appends the next bars to an existing file so drift, live performance and shadow tests
get fresh rows; `shift=True` moves the regime so drift and an accuracy drop appear.

Every feature at bar t uses only bars <= t; the label (next close > close) is derived by the
loader, so the generated frame has no target column.
"""

from __future__ import annotations

import argparse
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.signal import lfilter

from clm_tray.core.errors import DataError
from clm_tray.core.fsutil import atomic_write_bytes, fsync_dir

FEATURES: list[str] = [
    "ret_1", "ret_3", "ret_6", "ret_12", "ret_24",
    "vol_24", "vol_72", "rsi_14", "macd", "macd_hist", "bb_pos", "hl_range",
    "volume", "volume_z", "taker_buy_ratio",
    "open_interest", "oi_change_1", "oi_change_24",
    "funding_rate", "longAccount", "shortAccount", "longShortRatio",
]  # fmt: skip
PRICE_COLUMNS: list[str] = ["open", "high", "low", "close"]
COLUMNS: list[str] = ["timestamp", "symbol", *PRICE_COLUMNS, *FEATURES]

SAMPLE_END = pd.Timestamp("2025-12-11 08:00", tz="UTC")  # fixed so data/sample.csv is reproducible

_BASES = (
    "BTC ETH BNB SOL XRP ADA DOGE AVAX DOT LINK TRX LTC BCH ATOM UNI ETC XLM FIL APT ARB OP NEAR "
    "ICP AAVE INJ SUI SEI TIA RNDR FET GRT SAND MANA AXS APE GALA CHZ EOS XTZ THETA ALGO EGLD "
    "FLOW KAVA ZEC DASH NEO IOTA QTUM ONT VET HBAR ENJ CRV SNX COMP MKR YFI SUSHI 1INCH DYDX GMX "
    "LDO RUNE KSM ZIL BAT ANKR CELO CFX STX IMX WLD ORDI JTO PYTH BLUR MASK LRC ROSE KNC WOO "
    "STORJ ZRX SKL RSR HOT ONE ICX"
).split()
_ANCHOR_PRICES = {"BTC": 62000.0, "ETH": 3100.0, "BNB": 560.0, "SOL": 145.0, "XRP": 0.55}

_WARMUP = 120  # bars simulated before the first output bar so every rolling feature is defined
_HISTORY = 120  # bars per symbol `feed` reads back to continue the rolling features
_MARKET_MULT = np.array([0.6, 1.0, 2.1])  # calm / normal / turbulent market volatility
_MARKET_STAY = np.array([0.992, 0.985, 0.96])  # hourly probability of staying in the regime
_SYMBOL_MULT = np.array([1.0, 1.8])  # a coin's own quiet / excited state
_SYMBOL_STAY = np.array([0.99, 0.95])
_MARKET_VOL = 0.0045  # hourly market-factor volatility in the normal regime
_SIGNAL = 0.4  # signal strength in units of a bar's idiosyncratic volatility (tuned: ~55 % OOT)
_DIGITS = 8  # significant digits kept in CSV files


def symbol_names(count: int) -> list[str]:
    """Plausible USDT-perpetual tickers; beyond the built-in list, numbered ones."""
    names = [f"{b}USDT" for b in _BASES[:count]]
    names += [f"COIN{i:03d}USDT" for i in range(len(names) + 1, count + 1)]
    return names


@dataclass
class _Coins:
    """Per-symbol constants (price level, volatility, liquidity, crowd bias), drawn from the
    symbol's name alone: any seed and any order of symbols continue the same coins."""

    names: list[str]
    price: np.ndarray
    idio_vol: np.ndarray
    beta: np.ndarray
    log_volume: np.ndarray
    log_oi: np.ndarray
    short_mean: np.ndarray
    funding_mean: np.ndarray

    @classmethod
    def make(cls, names: list[str]) -> _Coins:
        rows = []
        for name in names:
            r = np.random.default_rng(zlib.crc32(name.encode()))
            base = name.removesuffix("USDT")
            price = _ANCHOR_PRICES.get(base, float(np.exp(r.uniform(np.log(0.02), np.log(400)))))
            rank_boost = 2.0 if base in _ANCHOR_PRICES else 0.0
            rows.append((
                price,
                r.uniform(0.004, 0.011),
                r.uniform(0.7, 1.4),
                r.uniform(np.log(3e5), np.log(4e7)) + rank_boost,
                r.uniform(np.log(5e6), np.log(4e8)) + rank_boost,
                r.uniform(0.44, 0.60),
                r.uniform(0.00003, 0.00015),
            ))
        a = np.array(rows, dtype=float).T
        return cls(names, a[0], a[1], a[2], a[3], a[4], a[5], a[6])


@dataclass
class _Start:
    """Where the process stands before the first simulated bar (arrays are per symbol)."""

    close: np.ndarray
    market_regime: int
    symbol_regime: np.ndarray
    volume_dev: np.ndarray  # log volume minus the coin's base level
    log_oi: np.ndarray
    funding: np.ndarray
    short_logit: np.ndarray
    signal: np.ndarray  # signal computed at the last bar; it moves the next return

    @classmethod
    def fresh(cls, coins: _Coins) -> _Start:
        n = len(coins.names)
        return cls(coins.price.copy(), 1, np.zeros(n, dtype=int), np.zeros(n), coins.log_oi.copy(),
                   coins.funding_mean.copy(), _logit(coins.short_mean), np.zeros(n))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def _student_t(rng: np.random.Generator, df: float, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance Student-t draws: the fat tails of crypto returns."""
    return rng.standard_t(df, size=shape) / math.sqrt(df / (df - 2.0))


def _ar1(inputs: np.ndarray, phi: float, start: np.ndarray) -> np.ndarray:
    """x_t = phi * x_{t-1} + u_t along axis 0, continuing from x_{-1} = start."""
    zi = (phi * start)[np.newaxis, :]
    out, _ = lfilter([1.0], [1.0, -phi], inputs, axis=0, zi=zi)
    return out


def _regimes(rng: np.random.Generator, steps: int, coins: int, start: _Start,
             shift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Markov-switching volatility: one market chain shared by all coins plus one per coin."""
    stay = _MARKET_STAY.copy()
    if shift:
        stay = np.array([0.9, 0.97, 0.995])  # a shifted world spends its time turbulent
    u_market = rng.random(steps)
    jump_market = rng.integers(1, 3, size=steps)
    u_coin = rng.random((steps, coins))
    market = np.empty(steps, dtype=int)
    coin = np.empty((steps, coins), dtype=int)
    m, c = (2 if shift else start.market_regime), start.symbol_regime.copy()
    for t in range(steps):
        if u_market[t] > stay[m]:
            m = (m + jump_market[t]) % 3
        flip = u_coin[t] > _SYMBOL_STAY[c]
        c = np.where(flip, 1 - c, c)
        market[t] = m
        coin[t] = c
    return market, coin


def signal_of(funding: np.ndarray, short: np.ndarray, taker: np.ndarray,
              volume_z: np.ndarray, shift: bool = False) -> np.ndarray:
    """The weak real edge: crowded shorts get squeezed, expensive funding fades, and taker
    buying carries on when volume is unusual. Roughly unit scale; clipped."""
    squeeze = np.tanh((short - 0.52) / 0.06)
    funding_fade = -np.tanh((funding - 0.0001) / 0.0003)
    flow = np.clip((taker - 0.5) / 0.03, -2.5, 2.5) * np.where(volume_z > 0.5, 1.0, 0.3)
    s = 0.55 * squeeze + 0.45 * funding_fade + 0.35 * flow
    return -0.5 * s if shift else s


def _simulate(coins: _Coins, start: _Start, steps: int, rng: np.random.Generator,
              shift: bool) -> dict[str, np.ndarray]:
    """Raw per-bar series, shape (steps, coins), without the rolling features."""
    n = len(coins.names)
    market, coin = _regimes(rng, steps, n, start, shift)
    mult_m = _MARKET_MULT[market][:, np.newaxis]
    mult_c = _SYMBOL_MULT[coin]
    market_shock = _MARKET_VOL * mult_m[:, 0] * _student_t(rng, 4.0, (steps, 1))[:, 0]
    idio_sigma = coins.idio_vol * mult_m * mult_c
    eps = np.clip(_student_t(rng, 3.5, (steps, n)), -9.0, 9.0)
    shock = coins.beta * market_shock[:, np.newaxis] + idio_sigma * eps
    total_sigma = np.sqrt((coins.beta * _MARKET_VOL * mult_m) ** 2 + idio_sigma**2)
    z = shock / total_sigma  # unit-scale surprise of this bar, before any signal

    taker = np.clip(0.5 + 0.022 * z + 0.018 * rng.standard_normal((steps, n)), 0.25, 0.75)

    phi_v = 0.9
    vol_input = (1 - phi_v) * 1.2 * np.log(mult_m * mult_c) + 0.12 * (np.abs(z) - 0.75)
    vol_input = vol_input + 0.22 * rng.standard_normal((steps, n))
    volume_shift = np.log(2.5) if shift else 0.0
    volume_dev = _ar1(vol_input, phi_v, start.volume_dev) + volume_shift
    log_volume = coins.log_volume + volume_dev

    phi_f = 0.97
    f_mean = coins.funding_mean + (0.0005 if shift else 0.0)
    f_input = (1 - phi_f) * f_mean + 0.000012 * z + 0.00002 * rng.standard_normal((steps, n))
    funding = _ar1(f_input, phi_f, start.funding)

    phi_s = 0.97
    s_mean = _logit(coins.short_mean + (0.12 if shift else 0.0))
    s_input = (1 - phi_s) * s_mean + 0.02 * z + 0.035 * rng.standard_normal((steps, n))
    short = 1.0 / (1.0 + np.exp(-_ar1(s_input, phi_s, start.short_logit)))

    oi_input = 0.004 * rng.standard_normal((steps, n)) + 0.003 * (np.abs(z) - 0.75)
    log_oi = coins.log_oi + _ar1(oi_input, 0.998, start.log_oi - coins.log_oi)

    return {
        "shock": shock, "idio_sigma": idio_sigma, "eps": eps, "taker": taker,
        "log_volume": log_volume, "funding": funding, "short": short, "log_oi": log_oi,
    }  # fmt: skip


def _prices_and_features(coins: _Coins, start: _Start, raw: dict[str, np.ndarray],
                         history: dict[str, np.ndarray], rng: np.random.Generator,
                         shift: bool) -> dict[str, np.ndarray]:
    """Walk prices bar by bar (each return needs the previous bar's signal), then compute every
    feature from current and past bars only. `history` holds earlier bars (may be empty) so
    rolling windows continue across a feed."""
    steps, n = raw["shock"].shape
    volume = np.exp(raw["log_volume"])
    h = len(history.get("close", ()))
    vol_hist = history["volume"] if h else np.empty((0, n))
    all_volume = np.vstack([vol_hist, volume])
    lv = pd.DataFrame(np.log(all_volume))
    volume_z_all = ((lv - lv.rolling(24).mean()) / lv.rolling(24).std()).to_numpy()
    volume_z = np.nan_to_num(volume_z_all[h:], nan=0.0)

    signals = signal_of(raw["funding"], raw["short"], raw["taker"], volume_z, shift)
    prev_signal = np.vstack([start.signal[np.newaxis, :], signals[:-1]])
    drift = -0.5 * raw["idio_sigma"] ** 2
    log_ret = drift + raw["shock"] + _SIGNAL * raw["idio_sigma"] * prev_signal
    close = start.close * np.exp(np.cumsum(log_ret, axis=0))
    open_ = np.vstack([start.close[np.newaxis, :], close[:-1]])
    wick = raw["idio_sigma"] * 0.6
    high = np.maximum(open_, close) * np.exp(wick * np.abs(rng.standard_normal((steps, n))))
    low = np.minimum(open_, close) * np.exp(-wick * np.abs(rng.standard_normal((steps, n))))
    oi = np.exp(raw["log_oi"]) * 1.0

    def joined(key: str, new: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.vstack([history[key], new]) if h else new)

    c = joined("close", close)
    ret = c.pct_change()
    out: dict[str, pd.DataFrame | np.ndarray] = {}
    for k in (1, 3, 6, 12, 24):
        out[f"ret_{k}"] = c.pct_change(k)
    out["vol_24"] = ret.rolling(24).std()
    out["vol_72"] = ret.rolling(72).std()
    delta = c.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    out["rsi_14"] = 100 - 100 / (1 + gain / loss.replace(0.0, np.nan))
    macd = (c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()) / c
    out["macd"] = macd
    out["macd_hist"] = macd - macd.ewm(span=9, adjust=False).mean()
    mid, sd = c.rolling(20).mean(), c.rolling(20).std()
    out["bb_pos"] = (c - (mid - 2 * sd)) / (4 * sd)
    out["hl_range"] = (joined("high", high) - joined("low", low)) / c
    o = joined("open_interest", oi)
    out["oi_change_1"] = o.pct_change()
    out["oi_change_24"] = o.pct_change(24)
    result = {k: np.asarray(v)[h:] for k, v in out.items()}
    result.update(
        open=open_, high=high, low=low, close=close, volume=volume, volume_z=volume_z,
        taker_buy_ratio=raw["taker"], open_interest=oi, funding_rate=raw["funding"],
        longAccount=1.0 - raw["short"], shortAccount=raw["short"],
        longShortRatio=(1.0 - raw["short"]) / raw["short"],
    )
    return result


def _to_long(series: dict[str, np.ndarray], names: list[str],
             times: pd.DatetimeIndex) -> pd.DataFrame:
    """Wide (time x symbol) arrays -> rows sorted by (timestamp, symbol)."""
    order = np.argsort(names)
    steps = len(times)
    frame = {
        "timestamp": np.repeat(times.to_numpy(), len(names)),
        "symbol": np.tile(np.asarray(names, dtype=object)[order], steps),
    }
    for col in (*PRICE_COLUMNS, *FEATURES):
        frame[col] = series[col][:, order].ravel()
    df = pd.DataFrame(frame)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def _current_hour() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("h")


def generate(symbols: int = 91, bars: int = 1500, seed: int = 7,
             end: pd.Timestamp | None = None) -> pd.DataFrame:
    """A fresh demo dataset: `bars` hourly bars per symbol ending at `end` (default: the current
    UTC hour). Identical values for the same (symbols, bars, seed); `end` only moves the clock."""
    if symbols < 1 or bars < 1:
        raise DataError(f"demo.generate needs symbols >= 1 and bars >= 1, got {symbols} x {bars}.")
    names = symbol_names(symbols)
    coins = _Coins.make(names)
    rng = np.random.default_rng([seed, symbols, bars])
    steps = bars + _WARMUP
    start = _Start.fresh(coins)
    raw = _simulate(coins, start, steps, rng, shift=False)
    series = _prices_and_features(coins, start, raw, {}, rng, shift=False)
    series = {k: v[_WARMUP:] for k, v in series.items()}
    end_ts = _current_hour() if end is None else pd.Timestamp(end)
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    times = pd.date_range(end=end_ts.floor("h"), periods=bars, freq="h")
    return _to_long(series, names, times)


def save(frame: pd.DataFrame, path: Path | str) -> None:
    """Write demo data atomically as CSV or Parquet (by suffix), in the format `feed` appends."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_bytes(path, _csv_bytes(frame, header=True))


def _csv_bytes(frame: pd.DataFrame, header: bool) -> bytes:
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


def _read_existing(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"Demo data file {path} does not exist; create it with "
                        "`clm-tray demo` (or demo.generate + demo.save) before feeding it.")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
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


def _resume(frame: pd.DataFrame, coins: _Coins) -> tuple[_Start, dict[str, np.ndarray],
                                                          pd.Timestamp]:
    """Recover the process state and the recent history from the file's last bars."""
    names = coins.names
    recent = frame[frame["timestamp"] > frame["timestamp"].max() - pd.Timedelta(hours=_HISTORY)]
    wide = {
        col: recent.pivot_table(index="timestamp", columns="symbol", values=col)
        .reindex(columns=names).ffill().bfill().to_numpy()
        for col in ("close", "high", "low", "volume", "open_interest", "vol_24", "funding_rate",
                    "shortAccount", "taker_buy_ratio", "volume_z")
    }
    last = {k: v[-1] for k, v in wide.items()}
    total = np.sqrt((coins.beta * _MARKET_VOL) ** 2 + coins.idio_vol**2)
    ratio = last["vol_24"] / total
    market = int(np.argmin(np.abs(_MARKET_MULT - np.nanmedian(ratio))))
    coin = np.argmin(np.abs(_SYMBOL_MULT[np.newaxis, :] * _MARKET_MULT[market]
                            - ratio[:, np.newaxis]), axis=1)
    short = np.clip(last["shortAccount"], 0.01, 0.99)
    start = _Start(
        close=last["close"], market_regime=market, symbol_regime=coin,
        volume_dev=np.log(last["volume"]) - coins.log_volume, log_oi=np.log(last["open_interest"]),
        funding=last["funding_rate"], short_logit=_logit(short),
        signal=signal_of(last["funding_rate"], short, last["taker_buy_ratio"], last["volume_z"]),
    )
    history = {"close": wide["close"], "high": wide["high"], "low": wide["low"],
               "volume": wide["volume"], "open_interest": wide["open_interest"]}
    return start, history, frame["timestamp"].max()


def feed(path: Path | str, hours: int, shift: bool = False, seed: int = 7) -> int:
    """Append the next `hours` hourly bars for every symbol in the demo file at `path`, continuing
    its process; `shift=True` moves the regime (feature levels jump, the edge flips and weakens).
    Deterministic given (seed, rows already in the file, shift). Returns rows appended."""
    path = Path(path)
    if hours < 1:
        return 0
    frame = _read_existing(path)
    names = sorted(frame["symbol"].astype(str).unique())
    coins = _Coins.make(names)
    start, history, last_ts = _resume(frame, coins)
    rng = np.random.default_rng([seed, len(frame), int(shift), 0xFEED])
    raw = _simulate(coins, start, hours, rng, shift)
    series = _prices_and_features(coins, start, raw, history, rng, shift)
    times = pd.date_range(start=last_ts + pd.Timedelta(hours=1), periods=hours, freq="h")
    chunk = _to_long(series, names, times)
    extra = [c for c in frame.columns if c not in chunk.columns]
    for col in extra:
        chunk[col] = np.nan
    chunk = chunk[list(frame.columns)]
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = frame.astype({c: chunk[c].dtype for c in extra if c in frame})
        save(pd.concat([frame, chunk], ignore_index=True), path)
    else:
        _append_csv(path, _csv_bytes(chunk, header=False))
    return len(chunk)


def _append_csv(path: Path, data: bytes) -> None:
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


def write_sample(path: Path | str = "data/sample.csv", symbols: int = 8, bars: int = 400,
                 seed: int = 7) -> Path:
    """Regenerate the committed sample (fixed end time, so the bytes are reproducible)."""
    path = Path(path)
    save(generate(symbols=symbols, bars=bars, seed=seed, end=SAMPLE_END), path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write demo data (default: the data/ sample).")
    parser.add_argument("path", nargs="?", default="data/sample.csv")
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--bars", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(write_sample(args.path, args.symbols, args.bars, args.seed))


if __name__ == "__main__":
    main()
