"""Has the input data moved away from what the champion was trained on? The drift check.

PSI against quantile bins frozen at training time (``reference_profile``, stored in the
manifest) plus the two-sample KS statistic D, weighted by the champion's feature importance;
``typical_window_score`` says how high the score runs with no drift at all, so a user can tell
a regime change from noise. See ``docs/drift.md`` for the method and why. The result is a
``DriftReport`` of plain numbers that goes unchanged into history, events and ``--json``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clm_tray.core.app.status import DriftReport, FeatureDrift
from clm_tray.core.monitor.predictions import require_columns

# Fractions below this are raised to it before PSI, so an empty bin on one side adds a large
# but finite term instead of infinity (1e-4 = one row in ten thousand).
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
DEFAULT_MIN_ROWS = 100


def reference_profile(
    frame: pd.DataFrame, features: Sequence[str], bins: int = DEFAULT_BINS
) -> dict[str, dict[str, Any]]:
    """Freeze each feature's distribution at training time, for later PSI checks.

    Per feature: ``edges`` are the unique interior cut points at the 1/bins .. (bins-1)/bins
    quantiles of the finite training values; they define ``len(edges) + 1`` right-closed bins
    ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``. ``fractions`` are the shares of ALL rows in
    those bins and ``missing`` the share of NaN/inf rows, so ``sum(fractions) + missing == 1``.
    A constant feature gets one edge (its value): a later move in either direction shows up.
    Plain lists and floats only: the profile is stored in the model's manifest.
    """
    if bins < 2:
        raise ValueError("bins must be at least 2")
    require_columns(frame, features, "training data")
    quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    profile: dict[str, dict[str, Any]] = {}
    for name in features:
        values = _as_float(frame[name])
        finite = values[np.isfinite(values)]
        if finite.size:
            edges = np.unique(np.quantile(finite, quantiles))
        else:
            edges = np.empty(0)
        value_fractions, missing = _bin_fractions(values, edges)
        profile[name] = {
            "edges": [float(e) for e in edges],
            "fractions": [float(f) for f in value_fractions],
            "missing": float(missing),
            "rows": int(values.size),
        }
    return profile


def _as_float(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _bin_fractions(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Shares of all rows per right-closed bin, and the share of non-finite rows."""
    total = values.size
    if total == 0:
        return np.zeros(edges.size + 1), 0.0
    finite = values[np.isfinite(values)]
    index = np.searchsorted(edges, finite, side="left")  # e[i-1] < x <= e[i] -> bin i
    counts = np.bincount(index, minlength=edges.size + 1)
    return counts / total, (total - finite.size) / total


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two bin-fraction vectors, empty bins floored at epsilon.

    The floor is applied without renormalising, so identical vectors give exactly 0.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov D: the largest gap between the two empirical CDFs.

    NaN and inf are dropped. Only D is reported, not its p-value: with thousands of
    autocorrelated rows the p-value is ~0 for almost any feature and says nothing useful.
    """
    a = np.sort(np.asarray(a, dtype=np.float64)[np.isfinite(a)])
    b = np.sort(np.asarray(b, dtype=np.float64)[np.isfinite(b)])
    if a.size == 0 or b.size == 0:
        return None
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def drift_report(
    reference: pd.DataFrame | None,
    current: pd.DataFrame,
    profile: Mapping[str, Mapping[str, Any]] | None,
    importance: Mapping[str, float] | None,
    threshold: float,
    min_rows: int = DEFAULT_MIN_ROWS,
    *,
    now: float | None = None,
) -> DriftReport:
    """Compare the current window of rows with the champion's training data.

    ``profile`` is the manifest's ``reference_profile`` (computed from ``reference`` when None);
    the features checked are the profile's. ``reference`` is the training data, used only for
    KS D (pass None to skip D). ``importance`` is the normalised gain importance; features
    without one weigh 0, and if every weight is 0 all features weigh the same. The window is
    chosen by the caller (rows newer than the champion's training data, or the last N hours).
    """
    checked_at = time.time() if now is None else float(now)
    if profile is None:
        if reference is None:
            raise ValueError("drift_report needs a profile or the reference frame")
        profile = reference_profile(reference, _feature_columns(reference))
    features = list(profile)
    start, end = _time_range(current)
    rows = len(current)
    if rows < min_rows:
        return DriftReport(
            score=0.0, threshold=float(threshold), drifted=False, window_rows=rows,
            window_start=start, window_end=end, features=[], enough=False,
            reason=f"only {rows} new rows; drift needs at least {min_rows}",
            checked_at=checked_at, min_rows=int(min_rows),
        )
    require_columns(current, features, "new data")
    weights = _weights(features, importance)
    results: list[FeatureDrift] = []
    for name, weight in zip(features, weights, strict=True):
        bins = profile[name]
        edges = np.asarray(bins["edges"], dtype=np.float64)
        expected = np.append(np.asarray(bins["fractions"], dtype=np.float64),
                             float(bins.get("missing", 0.0)))
        values = _as_float(current[name])
        value_fractions, missing = _bin_fractions(values, edges)
        feature_psi = psi(expected, np.append(value_fractions, missing))
        ks_d = None
        if reference is not None and name in reference.columns:
            ks_d = ks_statistic(_as_float(reference[name]), values)
        results.append(FeatureDrift(
            feature=name, psi=feature_psi, ks_d=ks_d, importance=float(weight),
            over=feature_psi > threshold,
        ))
    score = float(sum(f.psi * f.importance for f in results))
    drifted = score > threshold
    top = max(results, key=lambda f: f.psi) if results else None
    verdict = "drift" if drifted else "no drift"
    reason = f"{verdict}: weighted PSI {score:.4f} vs threshold {threshold:g} on {rows} rows"
    if top is not None:
        reason += f"; largest {top.feature} PSI {top.psi:.4f}"
    typical = None
    if reference is not None and start:
        span = pd.Timestamp(end) - pd.Timestamp(start)
        typical = typical_window_score(reference, profile, dict(zip(features, weights,
                                                                    strict=True)), span)
    if typical is not None:
        reason += f"; same-length training windows score up to {typical:.4f}"
    results.sort(key=lambda f: f.psi, reverse=True)
    return DriftReport(
        score=score, threshold=float(threshold), drifted=drifted, window_rows=rows,
        window_start=start, window_end=end, features=results, enough=True, reason=reason,
        min_rows=int(min_rows),
        checked_at=checked_at, typical_score=typical,
    )


def typical_window_score(
    reference: pd.DataFrame,
    profile: Mapping[str, Mapping[str, Any]],
    weights: Mapping[str, float],
    span: pd.Timedelta,
    windows: int = 20,
    quantile: float = 0.95,
) -> float | None:
    """How high the drift score runs with no drift at all, for a window of this length.

    Scores ``windows`` evenly spaced windows of ``span`` inside the training data against the
    profile and returns their ``quantile``. Autocorrelated data with regimes (markets) scores
    far above 0 on short windows even when nothing changed; this figure says how far.
    """
    if "timestamp" not in reference.columns:
        return None
    ts = pd.to_datetime(reference["timestamp"], utc=True, errors="coerce")
    ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    valid = ts.notna().to_numpy()
    if not valid.any():
        return None
    first, last, width = ns[valid].min(), ns[valid].max(), int(span.value)
    if width < 0 or last - first < 2 * width:
        return None
    starts = np.linspace(first, last - width, windows).astype(np.int64)
    names = [n for n in profile if n in reference.columns and weights.get(n, 0.0) > 0]
    binned = {}
    for name in names:
        edges = np.asarray(profile[name]["edges"], dtype=np.float64)
        values = _as_float(reference[name])
        index = np.searchsorted(edges, values, side="left")
        index[~np.isfinite(values)] = edges.size + 1  # the missing bucket
        expected = np.append(profile[name]["fractions"], profile[name].get("missing", 0.0))
        binned[name] = (index, expected)
    scores = []
    for begin in starts:
        inside = valid & (ns >= begin) & (ns <= begin + width)
        total = int(inside.sum())
        if total == 0:
            continue
        score = 0.0
        for name, (index, expected) in binned.items():
            counts = np.bincount(index[inside], minlength=expected.size)
            score += weights[name] * psi(expected, counts / total)
        scores.append(score)
    return float(np.quantile(scores, quantile)) if scores else None


def _weights(features: list[str], importance: Mapping[str, float] | None) -> list[float]:
    raw = np.array([max(float((importance or {}).get(f, 0.0) or 0.0), 0.0) for f in features])
    raw[~np.isfinite(raw)] = 0.0
    total = raw.sum()
    if total <= 0:
        return [1.0 / len(features)] * len(features) if features else []
    return [float(w) for w in raw / total]


def _feature_columns(frame: pd.DataFrame) -> list[str]:
    skip = {"timestamp", "symbol", "target"}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]


def _time_range(frame: pd.DataFrame) -> tuple[str, str]:
    if "timestamp" not in frame.columns or frame.empty:
        return "", ""
    ts = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce").dropna()
    if ts.empty:
        return "", ""
    return ts.min().isoformat(), ts.max().isoformat()
