"""The edge gate deploys a model only when it beats guessing by more than luck, bar by bar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clm_tray.core.ml.edge import EdgeResult, edge_test, long_run_variance, newey_west_bandwidth
from clm_tray.core.serialize import dumps, from_jsonable


def panel(bars: int, symbols: int) -> np.ndarray:
    """Timestamps of a bars x symbols panel, in the row order a CSV would have."""
    return np.repeat(np.arange(bars), symbols)


def test_a_model_with_a_real_edge_passes() -> None:
    rng = np.random.default_rng(1)
    ts = panel(400, 5)
    truth = rng.random(len(ts)) < 0.52  # slightly more 'up'
    correct = rng.random(len(ts)) < 0.58
    result = edge_test(correct, truth, ts, majority_label="up")
    assert result.passed
    assert result.p_value < 0.001
    assert result.bars == 400 and result.rows == 2000
    assert result.baseline_label == "always guessing 'up'"
    assert result.edge == pytest.approx(correct.mean() - truth.mean())
    assert result.reason == (f"{correct.mean() * 100:.1f} % vs {truth.mean() * 100:.1f} % "
                             "by always guessing 'up'")


def test_coin_flip_predictions_have_no_edge() -> None:
    rng = np.random.default_rng(2)
    ts = panel(2000, 4)
    truth = rng.random(len(ts)) < 0.5
    guesses = rng.random(len(ts)) < 0.5
    correct = guesses == truth
    majority = truth if truth.mean() >= 0.5 else ~truth
    result = edge_test(correct, majority, ts, majority_label="up")
    assert not result.passed
    assert result.p_value > 0.05


def test_coin_flips_pass_the_gate_about_as_often_as_the_chosen_p_allows() -> None:
    rng = np.random.default_rng(3)
    ts = panel(300, 3)
    passes = 0
    for _ in range(200):
        correct = rng.random(len(ts)) < 0.5
        majority = rng.random(len(ts)) < 0.5
        passes += edge_test(correct, majority, ts, majority_label="up").passed
    assert passes <= 0.05 * 200 * 2  # false positives near the nominal 5 %, not far above


def test_duplicated_correlated_rows_do_not_create_significance() -> None:
    """Symbols that move together in a bar count as one observation, not as many."""
    rng = np.random.default_rng(4)
    bars = 300
    per_bar = rng.permutation(np.arange(bars) < 160)  # 53.3 %: not significant on 300 bars
    single = edge_test(per_bar, np.zeros(bars, bool), np.arange(bars), majority_label="up")
    copies = 50
    ts = panel(bars, copies)
    many = edge_test(np.repeat(per_bar, copies), np.zeros(bars * copies, bool), ts,
                     majority_label="up")
    assert not single.passed
    assert not many.passed
    assert many.p_value == pytest.approx(single.p_value)
    # Judged row by row as if independent, the same evidence would look overwhelming.
    naive = edge_test(np.repeat(per_bar, copies), np.zeros(bars * copies, bool),
                      rng.permutation(bars * copies), majority_label="up")
    assert naive.p_value < 1e-6


def test_serially_dependent_bars_are_not_mistaken_for_an_edge() -> None:
    """Long runs of luck (regimes) widen the variance through the Newey-West lags."""
    rng = np.random.default_rng(5)
    bars = 1000
    runs = np.repeat(rng.random(bars // 20) < 0.5, 20)  # 20-bar streaks of right/wrong
    d = runs.astype(float) - 0.5
    lags = newey_west_bandwidth(bars)
    assert lags == 6
    assert long_run_variance(d, lags) > 2 * float(np.var(d))


def test_the_baseline_is_a_coin_flip_when_the_majority_guess_is_worse() -> None:
    ts = panel(100, 2)
    majority = np.zeros(200, bool)
    majority[:90] = True  # 45 %: worse than a coin flip
    correct = np.ones(200, bool)
    result = edge_test(correct, majority, ts, majority_label="down")
    assert result.baseline == 0.5
    assert result.baseline_label == "a coin flip"
    assert result.reason == "100.0 % vs 50.0 % by a coin flip"
    assert result.passed and result.p_value == 0.0


def test_a_minimum_edge_in_points_blocks_a_significant_but_small_edge() -> None:
    rng = np.random.default_rng(6)
    ts = panel(3000, 4)
    correct = rng.random(len(ts)) < 0.53
    majority = np.zeros(len(ts), bool)
    assert edge_test(correct, majority, ts, majority_label="up").passed
    strict = edge_test(correct, majority, ts, majority_label="up", min_edge_points=5.0)
    assert not strict.passed
    assert strict.p_value < 0.05


def test_a_model_below_the_baseline_is_reported_in_plain_numbers() -> None:
    ts = panel(200, 5)
    majority = np.zeros(1000, bool)
    majority[:515] = True
    correct = np.zeros(1000, bool)
    correct[::2] = True
    correct[1:6:2] = True  # 503 right
    result = edge_test(correct, majority, ts, majority_label="down")
    assert not result.passed
    assert result.reason == "50.3 % vs 51.5 % by always guessing 'down'"


def test_no_test_rows_is_no_edge_and_the_result_round_trips_through_json() -> None:
    empty = edge_test(np.array([], bool), np.array([], bool), np.array([]), majority_label="up")
    assert not empty.passed and empty.bars == 0
    rng = np.random.default_rng(7)
    ts = panel(50, 2)
    result = edge_test(rng.random(100) < 0.6, rng.random(100) < 0.5, ts, majority_label="up")
    assert from_jsonable(EdgeResult, json.loads(dumps(result))) == result


def test_mismatched_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        edge_test(np.ones(3, bool), np.ones(2, bool), np.arange(3), majority_label="up")
