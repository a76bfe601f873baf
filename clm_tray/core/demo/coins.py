"""The demo's coins: their tickers and the per-coin constants the market process uses.

Kept apart from the process (`demo.generator`) because a coin is defined by its name alone:
`generate` and `feed` both rebuild the same coins from the symbols, with any seed and in any
order, so a fed file continues the coins it already holds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

_BASES = (
    "BTC ETH BNB SOL XRP ADA DOGE AVAX DOT LINK TRX LTC BCH ATOM UNI ETC XLM FIL APT ARB OP NEAR "
    "ICP AAVE INJ SUI SEI TIA RNDR FET GRT SAND MANA AXS APE GALA CHZ EOS XTZ THETA ALGO EGLD "
    "FLOW KAVA ZEC DASH NEO IOTA QTUM ONT VET HBAR ENJ CRV SNX COMP MKR YFI SUSHI 1INCH DYDX GMX "
    "LDO RUNE KSM ZIL BAT ANKR CELO CFX STX IMX WLD ORDI JTO PYTH BLUR MASK LRC ROSE KNC WOO "
    "STORJ ZRX SKL RSR HOT ONE ICX"
).split()
_ANCHOR_PRICES = {"BTC": 62000.0, "ETH": 3100.0, "BNB": 560.0, "SOL": 145.0, "XRP": 0.55}


def symbol_names(count: int) -> list[str]:
    """Plausible USDT-perpetual tickers; beyond the built-in list, numbered ones."""
    names = [f"{b}USDT" for b in _BASES[:count]]
    names += [f"COIN{i:03d}USDT" for i in range(len(names) + 1, count + 1)]
    return names


@dataclass
class Coins:
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
    def make(cls, names: list[str]) -> Coins:
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
