"""Drift: PSI against frozen quantile bins and KS D, checked against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from clm_tray.core.app.status import DriftReport
from clm_tray.core.errors import DataError
from clm_tray.core.monitor.drift import (
    PSI_EPSILON,
    drift_report,
    ks_statistic,
    reference_profile,
)
from clm_tray.core.serialize import from_jsonable, to_jsonable


def _psi_by_hand(train: pd.Series, new: pd.Series, edges: list[float]) -> float:
    """Same bins, computed another way: pandas.cut on right-closed intervals plus a NaN bucket."""
    cuts = [-np.inf, *edges, np.inf]

    def shares(s: pd.Series) -> np.ndarray:
        binned = pd.cut(s, cuts, right=True)
        counts = binned.value_counts(sort=False).to_numpy()
        return np.append(counts, s.isna().sum()) / len(s)

    e = np.clip(shares(train), PSI_EPSILON, None)
    a = np.clip(shares(new), PSI_EPSILON, None)
    return float(((a - e) * np.log(a / e)).sum())


def test_profile_is_plain_json_with_ten_quantile_bins(make_data, features):
    train = make_data(5000, seed=1)
    profile = reference_profile(train, features)
    assert json.loads(json.dumps(profile)) == profile
    gauss = profile["gauss"]
    assert len(gauss["edges"]) == 9 and len(gauss["fractions"]) == 10
    assert np.allclose(gauss["fractions"], 0.1, atol=0.002)
    assert gauss["missing"] == 0.0
    # ties: only 4 distinct values -> fewer, unique edges
    assert profile["discrete"]["edges"] == sorted(set(profile["discrete"]["edges"]))
    assert profile["discrete"]["edges"] == [0.0, 1.0, 2.0, 3.0]
    # a constant feature keeps one edge (its value), everything in the lower bin
    assert profile["constant"]["edges"] == [3.0]
    assert profile["constant"]["fractions"] == [1.0, 0.0]
    # NaN share is its own bucket and the shares add up to one
    gappy = profile["gappy"]
    assert 0.08 < gappy["missing"] < 0.12
    assert sum(gappy["fractions"]) + gappy["missing"] == pytest.approx(1.0)


def test_psi_and_ks_d_match_independent_computation(make_data, features):
    train = make_data(4000, seed=1)
    new = make_data(1500, seed=2, shift=0.3)
    profile = reference_profile(train, features)
    report = drift_report(train, new, profile, None, threshold=0.05)
    by_name = {f.feature: f for f in report.features}
    for name in features:
        expected_psi = _psi_by_hand(train[name], new[name], profile[name]["edges"])
        assert by_name[name].psi == pytest.approx(expected_psi, rel=1e-9, abs=1e-12)
        a, b = train[name].dropna(), new[name].dropna()
        assert by_name[name].ks_d == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_statistic_handles_ties_nan_and_empty():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 700).astype(float)
    b = rng.integers(1, 6, 300).astype(float)
    b[:20] = np.nan
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b[20:]).statistic)
    assert ks_statistic(a, np.array([np.nan])) is None


def test_drift_detected_on_shifted_copy_not_on_fresh_sample(make_data, features):
    train = make_data(5000, seed=1)
    profile = reference_profile(train, features)
    importance = {"gauss": 0.5, "lognormal": 0.3, "gappy": 0.2}  # discrete/constant unused

    fresh = drift_report(train, make_data(2000, seed=2), profile, importance, threshold=0.05)
    assert fresh.enough and not fresh.drifted, fresh.reason
    assert fresh.score < 0.02
    assert not any(f.over for f in fresh.features)

    shifted = train.copy()
    for name in ("gauss", "gappy"):
        shifted[name] = shifted[name] + shifted[name].std() * 0.5
    moved = drift_report(train, shifted.iloc[:2000], profile, importance, threshold=0.05)
    assert moved.drifted and moved.score > 0.05, moved.reason
    assert {f.feature for f in moved.features if f.over} == {"gauss", "gappy"}
    assert moved.features[0].feature in {"gauss", "gappy"}  # highest PSI first
    assert "drift: weighted PSI" in moved.reason


def test_score_is_importance_weighted_mean_with_unweighted_fallback(make_data, features):
    train = make_data(3000, seed=1)
    new = make_data(1000, seed=2, shift=0.4)
    profile = reference_profile(train, features)
    only_gauss = drift_report(train, new, profile, {"gauss": 7.0}, threshold=0.05)
    psis = {f.feature: f.psi for f in only_gauss.features}
    assert only_gauss.score == pytest.approx(psis["gauss"])
    assert {f.feature: f.importance for f in only_gauss.features}["gauss"] == 1.0

    zeros = drift_report(train, new, profile, {f: 0.0 for f in features}, threshold=0.05)
    assert zeros.score == pytest.approx(np.mean(list(psis.values())))
    assert all(f.importance == pytest.approx(0.2) for f in zeros.features)


def test_constant_feature_that_moves_is_drift(make_data, features):
    train = make_data(2000, seed=1)
    new = make_data(500, seed=2)
    new["constant"] = 4.0
    report = drift_report(train, new, reference_profile(train, features), {"constant": 1},
                          threshold=0.05)
    assert report.drifted
    # all mass moved from a full bin to an empty one: two terms of (1 - eps) * ln(1 / eps)
    eps = PSI_EPSILON
    assert report.score == pytest.approx(2 * (1 - eps) * np.log(1 / eps))


def test_small_window_is_not_enough_and_round_trips_as_json(make_data, features):
    train = make_data(2000, seed=1)
    report = drift_report(train, make_data(12, seed=2), reference_profile(train, features),
                          None, threshold=0.05, min_rows=100, now=123.0)
    assert not report.enough and not report.drifted
    assert report.reason == "only 12 new rows; drift needs at least 100"
    assert report.checked_at == 123.0
    assert report.window_start.startswith("2026-01-01T00:00:00")
    full = drift_report(None, make_data(300, seed=2), reference_profile(train, features), None,
                        threshold=0.05)
    assert all(f.ks_d is None for f in full.features)  # no reference rows: PSI only
    text = json.dumps(to_jsonable(full), allow_nan=False)
    assert from_jsonable(DriftReport, json.loads(text)) == full


def test_missing_feature_column_is_one_line_data_error(make_data, features):
    train = make_data(500, seed=1)
    new = make_data(200, seed=2).drop(columns=["gauss"])
    with pytest.raises(DataError, match="lacks the model's feature column"):
        drift_report(train, new, reference_profile(train, features), None, threshold=0.05)


def test_typical_score_shows_how_high_regimes_push_the_score_without_drift():
    """Hourly data whose level switches regime every ~100 hours: a 2-day window of the SAME
    process scores far above the threshold, and so do 2-day windows of the training data."""
    rng = np.random.default_rng(5)
    hours = 3000
    regime = np.repeat(rng.normal(0, 1, hours // 100 + 1), 100)[:hours]
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2026-01-01", periods=hours, freq="h", tz="UTC"),
        "level": regime + rng.normal(0, 0.3, hours),
    })
    train, new = frame.iloc[:2952], frame.iloc[2952:]  # the last 48 hours
    report = drift_report(train, new, reference_profile(train, ["level"]), None, 0.05,
                          min_rows=10)
    assert report.score > 0.5 and report.drifted  # the decision stays score > threshold
    assert report.typical_score is not None and report.typical_score > 0.5
    assert "same-length training windows score up to" in report.reason


def test_typical_score_is_small_for_an_iid_process(make_data, features):
    train = make_data(5000, seed=1)
    report = drift_report(train, make_data(1000, seed=2), reference_profile(train, features),
                          None, 0.05)
    assert report.typical_score is not None and report.typical_score < 0.03
