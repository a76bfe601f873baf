"""Demo market data: a deterministic stand-in for a Binance futures collector.

The demo must behave like the trader's real data or nothing downstream is tested honestly:
hourly bars for many USDT perpetuals, volatility that comes in regimes, fat-tailed returns,
and a weak but real signal (crowd positioning, funding and order flow nudge the next bar), so a
good model scores a few points above a coin flip out-of-time and a leak stands out.
This module is that market process and `generate`, a fresh frame of it; `demo.feed` continues
a file with it, `demo.datafile` writes it the collector's way.

Every feature at bar t uses only bars <= t; the label (next close > close) is derived by the
loader, so the generated frame has no target column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clm_tray.core.demo.coins import Coins, symbol_names
from clm_tray.core.errors import DataError

FEATURES: list[str] = [
    "ret_1", "ret_3", "ret_6", "ret_12", "ret_24",
    "vol_24", "vol_72", "rsi_14", "macd", "macd_hist", "bb_pos", "hl_range",
    "volume", "volume_z", "taker_buy_ratio",
    "open_interest", "oi_change_1", "oi_change_24",
    "funding_rate", "longAccount", "shortAccount", "longShortRatio",
]  # fmt: skip
PRICE_COLUMNS: list[str] = ["open", "high", "low", "close"]
COLUMNS: list[str] = ["timestamp", "symbol", *PRICE_COLUMNS, *FEATURES]

_WARMUP = 120  # bars simulated before the first output bar so every rolling feature is defined
_MARKET_MULT = np.array([0.6, 1.0, 2.1])  # calm / normal / turbulent market volatility
_MARKET_STAY = np.array([0.992, 0.985, 0.96])  # hourly probability of staying in the regime
_SYMBOL_MULT = np.array([1.0, 1.8])  # a coin's own quiet / excited state
_SYMBOL_STAY = np.array([0.99, 0.95])
_MARKET_VOL = 0.0045  # hourly market-factor volatility in the normal regime
_SIGNAL = 0.4  # signal strength in units of a bar's idiosyncratic volatility (tuned: ~55 % OOT)


@dataclass
class Start:
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
    def fresh(cls, coins: Coins) -> Start:
        n = len(coins.names)
        return cls(coins.price.copy(), 1, np.zeros(n, dtype=int), np.zeros(n), coins.log_oi.copy(),
                   coins.funding_mean.copy(), _logit(coins.short_mean), np.zeros(n))

    @classmethod
    def resume(cls, coins: Coins, last: dict[str, np.ndarray]) -> Start:
        """The state after a file's last bar, read back from that bar's columns (one value per
        symbol): the regimes are those whose volatility lies nearest the bar's ``vol_24``."""
        total = np.sqrt((coins.beta * _MARKET_VOL) ** 2 + coins.idio_vol**2)
        ratio = last["vol_24"] / total
        market = int(np.argmin(np.abs(_MARKET_MULT - np.nanmedian(ratio))))
        coin = np.argmin(np.abs(_SYMBOL_MULT[np.newaxis, :] * _MARKET_MULT[market]
                                - ratio[:, np.newaxis]), axis=1)
        short = np.clip(last["shortAccount"], 0.01, 0.99)
        return cls(
            close=last["close"], market_regime=market, symbol_regime=coin,
            volume_dev=np.log(last["volume"]) - coins.log_volume,
            log_oi=np.log(last["open_interest"]), funding=last["funding_rate"],
            short_logit=_logit(short),
            signal=signal_of(last["funding_rate"], short, last["taker_buy_ratio"],
                             last["volume_z"]),
        )


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def _student_t(rng: np.random.Generator, df: float, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance Student-t draws: the fat tails of crypto returns."""
    return rng.standard_t(df, size=shape) / math.sqrt(df / (df - 2.0))


def _ar1(inputs: np.ndarray, phi: float, start: np.ndarray) -> np.ndarray:
    """x_t = phi * x_{t-1} + u_t along axis 0, continuing from x_{-1} = start.

    A loop over bars, vectorised over symbols (like _regimes): the same float operations in
    the same order as ``scipy.signal.lfilter([1], [1, -phi], ...)``, which this replaced so
    that nothing at run time needs SciPy; the demo data stays bit-for-bit the same.
    """
    out = np.empty(inputs.shape, dtype=np.float64)
    prev = np.asarray(start, dtype=np.float64)
    for t in range(inputs.shape[0]):
        prev = inputs[t] + phi * prev
        out[t] = prev
    return out


def _regimes(rng: np.random.Generator, steps: int, coins: int, start: Start,
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


def _simulate(coins: Coins, start: Start, steps: int, rng: np.random.Generator,
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


def _prices_and_features(coins: Coins, start: Start, raw: dict[str, np.ndarray],
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


def simulate_bars(coins: Coins, start: Start, steps: int, rng: np.random.Generator,
                  shift: bool, history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every column of ``steps`` new bars after ``start``, wide (time x symbol); ``history``
    (earlier bars, may be empty) continues the rolling features across a feed."""
    raw = _simulate(coins, start, steps, rng, shift)
    return _prices_and_features(coins, start, raw, history, rng, shift)


def to_long(series: dict[str, np.ndarray], names: list[str],
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
    coins = Coins.make(names)
    rng = np.random.default_rng([seed, symbols, bars])
    steps = bars + _WARMUP
    start = Start.fresh(coins)
    series = simulate_bars(coins, start, steps, rng, shift=False, history={})
    series = {k: v[_WARMUP:] for k, v in series.items()}
    end_ts = _current_hour() if end is None else pd.Timestamp(end)
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    times = pd.date_range(end=end_ts.floor("h"), periods=bars, freq="h")
    return to_long(series, names, times)
