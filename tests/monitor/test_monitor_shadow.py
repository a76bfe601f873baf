"""Live performance and the shadow test with small real XGBoost models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from clm_tray.core.app.status import PerformanceReport, ShadowResult
from clm_tray.core.monitor.performance import live_performance
from clm_tray.core.monitor.predictions import probabilities
from clm_tray.core.monitor.shadow import mcnemar_exact, shadow_test
from clm_tray.core.serialize import dumps, from_jsonable


def _train(frame: pd.DataFrame, features: list[str], rounds: int = 30, depth: int = 3,
           labels: np.ndarray | None = None) -> xgb.Booster:
    y = frame["target"].to_numpy() if labels is None else labels
    matrix = xgb.DMatrix(frame[features].to_numpy(np.float32), label=y, feature_names=features)
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "nthread": 1,
              "seed": 0}
    return xgb.train(params, matrix, num_boost_round=rounds)


@pytest.fixture(scope="module")
def models(make_data, features):
    train = make_data(3000, seed=1)
    good = _train(train, features)
    weak = _train(train, ["discrete", "constant"], rounds=5, depth=1)  # can learn ~nothing
    shuffled = np.random.default_rng(0).permutation(train["target"].to_numpy())
    noise = _train(train, features, rounds=60, depth=6, labels=shuffled)
    new_rows = make_data(2000, seed=9)
    return {"good": good, "weak": weak, "noise": noise, "new": new_rows, "features": features}


# scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue (SciPy 1.17.1), computed once: clm-tray
# no longer imports SciPy, so these fixed values hold it to what SciPy said.
SCIPY_BINOMTEST = {
    (3, 17): 0.0025768280029296875, (40, 61): 0.046044066929342785, (0, 6): 0.03125,
    (120, 95): 0.10145232764870649, (250, 310): 0.012590475149380293,
    (1200, 1290): 0.07447227260285276, (20000, 20420): 0.037150937434276124,
    (100000, 100900): 0.044886148461475976, (7, 8): 1.0, (0, 1): 1.0, (10, 3000): 0.0,
}


def test_mcnemar_exact_matches_binomial_test_and_known_value():
    # 2 (C(10, 0) + C(10, 1)) / 2**10
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024, abs=1e-15)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    for (b, c), expected in SCIPY_BINOMTEST.items():
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-12), (b, c)
        assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


def test_mcnemar_exact_is_the_exact_binomial_tail_at_any_size():
    """Exact rational arithmetic as the judge: 2 * sum(C(n, j), j <= k) / 2**n."""
    from fractions import Fraction
    from math import comb

    for b, c in [(0, 5), (4, 11), (33, 64), (180, 221), (999, 1100), (2400, 2510)]:
        n, k = b + c, min(b, c)
        exact = min(Fraction(1), Fraction(2 * sum(comb(n, j) for j in range(k + 1)), 2**n))
        assert abs(mcnemar_exact(b, c) - float(exact)) <= 1e-13 * float(exact), (b, c)


def test_live_performance_measures_the_champion(models):
    f, new = models["features"], models["new"]
    report = live_performance(models["good"], new, f, "target", test_accuracy=0.80,
                              baseline=0.5, min_rows=100, max_drop=0.02, now=5.0)
    p = models["good"].predict(xgb.DMatrix(new[f].to_numpy(np.float32), feature_names=f))
    y = new["target"].to_numpy()
    assert report.enough and report.rows == 2000
    assert report.accuracy == pytest.approx(accuracy_score(y, p >= 0.5))
    assert report.auc == pytest.approx(roc_auc_score(y, p))
    assert report.log_loss == pytest.approx(log_loss(y, p))
    assert report.drop == pytest.approx(0.80 - report.accuracy)
    assert from_jsonable(PerformanceReport, json.loads(dumps(report))) == report

    worse = live_performance(models["noise"], new, f, "target", test_accuracy=report.accuracy,
                             baseline=0.5, min_rows=100, max_drop=0.02)
    assert worse.degraded
    assert worse.reason == (f"live accuracy {worse.accuracy * 100:.1f} % is {worse.drop * 100:.1f}"
                            f" points below the test accuracy {report.accuracy * 100:.1f} % "
                            "(allowed 2.0)")


def test_live_performance_below_min_rows_says_not_enough(models):
    f, new = models["features"], models["new"].iloc[:37]
    report = live_performance(models["good"], new, f, "target", test_accuracy=0.99,
                              baseline=0.5, min_rows=100, max_drop=0.02)
    assert not report.enough and not report.degraded
    assert report.reason == "not enough new rows (37 < QT_CLM_SHADOW_MIN=100)"
    one_class = models["new"][models["new"]["target"] == 1].iloc[:150]
    single = live_performance(models["good"], one_class, f, "target", 0.8, 0.5, 100, 0.02)
    assert single.enough and single.auc is None and single.log_loss is not None


def test_shadow_promotes_a_better_candidate(models):
    f, new = models["features"], models["new"]
    result = shadow_test(models["good"], models["weak"], new, f, "target", min_rows=100,
                         logloss_tol=0.01)
    assert result.decision == "promote", result.reason
    assert result.candidate_accuracy > result.champion_accuracy + 0.1
    assert result.candidate_only > result.champion_only
    assert "p=" in result.reason and "log loss" in result.reason
    assert from_jsonable(ShadowResult, json.loads(dumps(result))) == result


def test_shadow_rejects_a_model_trained_on_shuffled_labels(models):
    f, new = models["features"], models["new"]
    result = shadow_test(models["noise"], models["good"], new, f, "target", min_rows=100,
                         logloss_tol=0.01)
    assert result.decision == "reject", result.reason
    assert result.champion_only > result.candidate_only and result.p_value < 1e-6
    assert "significantly worse" in result.reason


def test_shadow_waits_below_min_rows(models):
    f, new = models["features"], models["new"].iloc[:50]
    result = shadow_test(models["noise"], models["good"], new, f, "target", min_rows=100,
                         logloss_tol=0.01)
    assert result.decision == "wait" and result.rows == 50
    assert "QT_CLM_SHADOW_MIN=100" in result.reason


def test_shadow_rejects_same_answers_with_overconfident_probabilities(models):
    """Callables are accepted; equal accuracy but much worse log loss is still a reject."""
    f, new, good = models["features"], models["new"], models["good"]

    def champion(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
        return probabilities(good, frame, features)

    def overconfident(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
        return np.where(champion(frame, features) >= 0.5, 0.999, 0.001)

    result = shadow_test(overconfident, champion, new, f, "target", min_rows=100,
                         logloss_tol=0.01)
    assert result.candidate_only == result.champion_only == 0 and result.p_value == 1.0
    assert result.decision == "reject" and "log loss" in result.reason
    assert shadow_test(good, champion, new, f, "target", 100, 0.01).decision == "promote"
    assert shadow_test(good, None, new, f, "target", 100, 0.01).decision == "promote"


def test_booster_predicts_with_its_best_iteration(models):
    f, new = models["features"], models["new"]
    cut = models["good"].copy()
    cut.set_attr(best_iteration="4")
    dm = xgb.DMatrix(new[f].to_numpy(np.float32), feature_names=f)
    expected = models["good"].predict(dm, iteration_range=(0, 5))
    assert np.allclose(probabilities(cut, new, f), expected)
