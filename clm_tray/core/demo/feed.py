"""Feeding a demo file: the next hourly bars appended, as the collector would append them.

Drift, live-performance and shadow checks need fresh rows; `feed` continues the market
process from the file's own last bars (so a fed file reads as one history), and
``shift=True`` moves the regime so drift and an accuracy drop appear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clm_tray.core.demo.coins import Coins
from clm_tray.core.demo.datafile import append_csv, csv_bytes, is_parquet, read_demo_file, save
from clm_tray.core.demo.generator import Start, simulate_bars, to_long

_HISTORY = 120  # bars per symbol `feed` reads back to continue the rolling features


def _resume(frame: pd.DataFrame, coins: Coins) -> tuple[Start, dict[str, np.ndarray],
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
    start = Start.resume(coins, {k: v[-1] for k, v in wide.items()})
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
    frame = read_demo_file(path)
    names = sorted(frame["symbol"].astype(str).unique())
    coins = Coins.make(names)
    start, history, last_ts = _resume(frame, coins)
    rng = np.random.default_rng([seed, len(frame), int(shift), 0xFEED])
    series = simulate_bars(coins, start, hours, rng, shift, history)
    times = pd.date_range(start=last_ts + pd.Timedelta(hours=1), periods=hours, freq="h")
    chunk = to_long(series, names, times)
    extra = [c for c in frame.columns if c not in chunk.columns]
    for col in extra:
        chunk[col] = np.nan
    chunk = chunk[list(frame.columns)]
    if is_parquet(path):
        frame = frame.astype({c: chunk[c].dtype for c in extra if c in frame})
        save(pd.concat([frame, chunk], ignore_index=True), path)
    else:
        append_csv(path, csv_bytes(chunk, header=False))
    return len(chunk)
