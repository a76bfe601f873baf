"""Is the champion still right for today's data? Drift, live performance and the shadow test.

Three questions, answered from plain data (frames, boosters, the manifest's numbers) so the
scheduler, the retrain cycle, the CLI and the GUI all see the same figures:

- ``drift_report``: has the input data moved away from what the champion was trained on?
  PSI against quantile bins frozen at training time (``reference_profile``, stored in the
  manifest) plus the two-sample KS statistic D. See ``docs/drift.md`` for the method and why.
- ``live_performance``: on labelled rows newer than its training data, is the champion still
  as accurate as its own out-of-time test said?
- ``shadow_test``: on the same new rows, is a freshly trained candidate at least as good as
  the champion? Exact McNemar test on paired outcomes plus log loss.

Results are dataclasses of floats, ints, strings and bools (``serialize.to_jsonable`` makes
them JSON) so they
go unchanged into the history database, events and ``--json`` output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from clm_tray.core.app.status import DriftReport, FeatureDrift, PerformanceReport
from clm_tray.core.errors import DataError
from clm_tray.core.ml.metrics import log_loss, roc_auc_score

# Fractions below this are raised to it before PSI, so an empty bin on one side adds a large
# but finite term instead of infinity (1e-4 = one row in ten thousand).
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
DEFAULT_MIN_ROWS = 100
MCNEMAR_ALPHA = 0.05

# A model is an xgboost Booster or any callable ``fn(frame, features) -> P(target = 1)``
# (for example ``functools.partial(training.predict_proba, booster)``).
Model = xgb.Booster | Callable[[pd.DataFrame, list[str]], np.ndarray]


# ---- reference profile --------------------------------------------------------------------


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
    _require_columns(frame, features, "training data")
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


# ---- drift ---------------------------------------------------------------------------------


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
    _require_columns(current, features, "new data")
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


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"The {what} lacks the model's feature column(s) {shown}; "
            "restore them or retrain on the new columns."
        )


# ---- predictions ---------------------------------------------------------------------------


def probabilities(model: Model, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """P(target = 1) per row from a Booster or a callable ``fn(frame, features)``.

    A Booster that knows its feature names reads those columns (so a champion and a candidate
    with different feature sets can be compared); otherwise ``features``, in that order. A
    Booster saved after early stopping predicts with its best iteration only, as
    ``XGBClassifier.predict_proba`` does.
    """
    if isinstance(model, xgb.Booster):
        columns = list(model.feature_names or features)
        _require_columns(frame, columns, "new data")
        matrix = xgb.DMatrix(frame[columns].to_numpy(np.float32), feature_names=columns)
        best = model.attr("best_iteration")
        if best is not None:
            return np.asarray(model.predict(matrix, iteration_range=(0, int(best) + 1)))
        return np.asarray(model.predict(matrix))
    if callable(model):
        return np.asarray(model(frame, list(features)), dtype=np.float64).reshape(-1)
    raise TypeError(f"expected an xgboost Booster or a callable, got {type(model).__name__}")


def _labelled(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    if target not in frame.columns:
        raise DataError(f"The new data has no target column {target!r}; set QT_CLM_TARGET.")
    labels = pd.to_numeric(frame[target], errors="coerce")
    keep = labels.notna().to_numpy()
    return frame.loc[keep], labels[keep].to_numpy(dtype=np.int64)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


# ---- live performance ----------------------------------------------------------------------


def live_performance(
    booster: Model,
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    test_accuracy: float,
    baseline: float,
    min_rows: int,
    max_drop: float,
    *,
    now: float | None = None,
) -> PerformanceReport:
    """The champion's accuracy (p >= 0.5), AUC and log loss on labelled rows it never saw.

    The caller passes the rows newer than the champion's training data. Figures are computed
    whenever there is a labelled row, but ``degraded`` is only decided with at least
    ``min_rows`` (QT_CLM_SHADOW_MIN) rows.
    """
    checked_at = time.time() if now is None else float(now)
    labelled, y = _labelled(frame, target)
    rows = int(y.size)
    accuracy = auc = loss = drop = None
    if rows:
        p = probabilities(booster, labelled, features)
        accuracy = float(np.mean((p >= 0.5).astype(np.int64) == y))
        auc = float(roc_auc_score(y, p)) if np.unique(y).size == 2 else None
        loss = _log_loss(y, p)
        drop = float(test_accuracy) - accuracy
    enough = rows >= min_rows
    degraded = bool(enough and drop is not None and drop > max_drop)
    if not enough:
        reason = f"not enough new rows ({rows} < QT_CLM_SHADOW_MIN={min_rows})"
    elif degraded:
        reason = (f"degraded: live accuracy {accuracy:.3f} is {drop * 100:.1f} points below "
                  f"the test accuracy {test_accuracy:.3f} (allowed {max_drop * 100:.1f})")
    else:
        reason = (f"ok: live accuracy {accuracy:.3f} vs test accuracy {test_accuracy:.3f} "
                  f"on {rows} rows")
    return PerformanceReport(
        rows=rows, accuracy=accuracy, auc=auc, log_loss=loss, test_accuracy=float(test_accuracy),
        baseline=float(baseline), drop=drop, degraded=degraded, enough=enough, reason=reason,
        checked_at=checked_at, min_rows=int(min_rows),
    )


# ---- shadow test ---------------------------------------------------------------------------


@dataclass
class ShadowResult:
    rows: int
    candidate_accuracy: float | None
    champion_accuracy: float | None
    candidate_only: int  # b: candidate right, champion wrong
    champion_only: int  # c: champion right, candidate wrong
    p_value: float  # exact two-sided McNemar
    candidate_log_loss: float | None
    champion_log_loss: float | None
    decision: str  # "promote" | "reject" | "wait"
    reason: str
    min_rows: int = 0  # rows a verdict needs (the user is told how many more)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for discordant counts b and c (1.0 when both are 0).

    Under "both models are equally good" each discordant pair is a fair coin, so the p-value
    is the two-sided binomial test of min(b, c) successes in b + c trials with p = 0.5.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest  # only when deciding: scipy.stats costs ~0.5 s to import

    return float(min(1.0, binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue))


def shadow_test(
    candidate: Model,
    champion: Model | None,
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows: int,
    logloss_tol: float,
    *,
    alpha: float = MCNEMAR_ALPHA,
) -> ShadowResult:
    """Decide whether a candidate may replace the champion, on rows both could be judged on.

    The caller selects ``frame``: labelled rows newer than the champion's training data that the
    candidate did not use for training (its train, validation or early-stopping rows), so
    neither model has seen them. Models are Boosters or callables ``fn(frame, features)``
    returning P(target = 1).

    Decision: fewer than ``min_rows`` rows -> "wait" (the candidate stays challenger). Otherwise
    "promote" unless the candidate is significantly worse (c > b and exact McNemar p < alpha)
    or its log loss exceeds the champion's by more than ``logloss_tol`` -> "reject".
    ``champion=None`` (nothing deployed yet) -> "promote".
    """
    labelled, y = _labelled(frame, target)
    rows = int(y.size)
    if champion is None:
        cand_acc = cand_loss = None
        if rows:
            p = probabilities(candidate, labelled, features)
            cand_acc = float(np.mean((p >= 0.5) == y))
            cand_loss = _log_loss(y, p)
        return ShadowResult(rows, cand_acc, None, 0, 0, 1.0, cand_loss, None, "promote",
                            "promote: no champion yet", min_rows=int(min_rows))
    if rows == 0:
        return ShadowResult(0, None, None, 0, 0, 1.0, None, None, "wait",
                            f"wait: no new labelled rows yet (QT_CLM_SHADOW_MIN={min_rows})",
                            min_rows=int(min_rows))
    p_cand = probabilities(candidate, labelled, features)
    p_champ = probabilities(champion, labelled, features)
    cand_right = (p_cand >= 0.5).astype(np.int64) == y
    champ_right = (p_champ >= 0.5).astype(np.int64) == y
    b = int(np.sum(cand_right & ~champ_right))
    c = int(np.sum(champ_right & ~cand_right))
    p_value = mcnemar_exact(b, c)
    cand_acc, champ_acc = float(cand_right.mean()), float(champ_right.mean())
    cand_loss, champ_loss = _log_loss(y, p_cand), _log_loss(y, p_champ)
    figures = (f"accuracy {cand_acc:.3f} vs champion {champ_acc:.3f} on {rows} rows "
               f"(b={b}, c={c}, McNemar p={p_value:.3g}), "
               f"log loss {cand_loss:.4f} vs {champ_loss:.4f}")
    if rows < min_rows:
        decision = "wait"
        why = f"only {rows} shadow rows, QT_CLM_SHADOW_MIN={min_rows}"
    elif c > b and p_value < alpha:
        decision, why = "reject", f"candidate significantly worse (p < {alpha:g})"
    elif cand_loss > champ_loss + logloss_tol:
        decision, why = "reject", f"candidate log loss worse by more than {logloss_tol:g}"
    else:
        decision, why = "promote", "candidate not worse"
    return ShadowResult(
        rows=rows, candidate_accuracy=cand_acc, champion_accuracy=champ_acc, candidate_only=b,
        champion_only=c, p_value=p_value, candidate_log_loss=cand_loss,
        champion_log_loss=champ_loss, decision=decision, reason=f"{decision}: {why}; {figures}",
        min_rows=int(min_rows),
    )

