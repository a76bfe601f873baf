"""Training is honest: out-of-time, baseline-aware, leak-flagging, killable, never pickled."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost

from clm_tray.core.config.settings import Settings
from clm_tray.core.errors import (
    DataError,
    StoreError,
    TrainingCancelled,
    TrainingError,
    TrainingTimeout,
)
from clm_tray.core.ml.data import Dataset, load_dataset
from clm_tray.core.ml.modelfile import load_booster, predict_proba
from clm_tray.core.ml.split import split_by_time
from clm_tray.core.ml.train_result import TrainParams, TrainResult
from clm_tray.core.ml.training import train_and_evaluate
from clm_tray.core.ml.trainprocess import MODEL_NAME, train_in_child

FEATURES = ["ret_1", "ret_6", "vol_24", "noise"]


def market(symbols: int = 6, bars: int = 400, seed: int = 3) -> pd.DataFrame:
    """Hourly bars with a weak, real signal: next move leans slightly with ret_6."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frames = []
    for s in range(symbols):
        ts = pd.date_range(start, periods=bars, freq="h")
        ret_6 = rng.normal(0, 1, bars)
        nxt = 0.15 * ret_6 + rng.normal(0, 1, bars)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": ts,
                    "symbol": f"S{s:02d}USDT",
                    "ret_1": rng.normal(0, 1, bars),
                    "ret_6": ret_6,
                    "vol_24": rng.gamma(2.0, 1.0, bars),
                    "noise": rng.normal(0, 1, bars),
                    "future_return": nxt,
                    "target": (nxt > 0).astype(int),
                }
            )
        )
    frame = pd.concat(frames).sort_values(["timestamp", "symbol"], kind="stable")
    return frame.reset_index(drop=True)


def dataset(tmp_path: Path, frame: pd.DataFrame, features: list[str]) -> Dataset:
    """A real Dataset, loaded from a real CSV the way the cycle loads it."""
    return load_dataset(write_csv(tmp_path, frame), target="target", features=features)


def small_params(**kw) -> TrainParams:
    base = dict(n_estimators=40, max_depth=3, learning_rate=0.1, early_stopping=10, threads=1,
                embargo_hours=6.0)
    base.update(kw)
    return TrainParams(**base)


def write_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path


# ---- the split -------------------------------------------------------------------------------
def test_evaluation_is_out_of_time_with_embargo():
    frame = market()
    params = small_params(embargo_hours=12.0)
    train, val, test, info = split_by_time(frame, params)
    ts = frame["timestamp"]
    embargo = pd.Timedelta(hours=info.embargo_hours)
    assert info.embargo_hours == 12.0
    assert ts[test].min() > ts[train].max() + embargo
    assert ts[test].min() > ts[val].max() + embargo
    assert ts[val].min() > ts[train].max() + embargo
    assert not set(train) & set(test) and not set(val) & set(test) and not set(train) & set(val)
    # the test slice is the last 20 % of the time range
    span = ts.max() - ts.min()
    assert ts[test].min() >= ts.max() - 0.2 * span
    assert (info.train_rows, info.val_rows, info.test_rows) == (len(train), len(val), len(test))
    assert info.test_start.endswith("+00:00") and info.test_end == ts.max().isoformat()


def test_embargo_is_at_least_one_bar_even_when_set_to_zero():
    frame = market()
    train, _, test, info = split_by_time(frame, small_params(embargo_hours=0.0))
    assert info.embargo_hours == 1.0
    ts = frame["timestamp"]
    assert ts[test].min() - ts[train].max() > pd.Timedelta(hours=1)


def test_too_little_time_is_one_line_data_error():
    frame = market(symbols=2, bars=60)
    with pytest.raises(DataError) as exc:
        split_by_time(frame, small_params(embargo_hours=24.0))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "too little time" in msg and "QT_CLM_TEST_FRACTION" in msg


def test_single_class_training_slice_is_data_error(tmp_path):
    frame = market()
    frame["target"] = 1
    with pytest.raises(DataError, match="only target class 1"):
        train_and_evaluate(dataset(tmp_path, frame, FEATURES), small_params(), tmp_path / "m.ubj")


def test_params_follow_settings():
    s = Settings(n_estimators=77, max_depth=4, learning_rate=0.2, early_stopping=5,
                 train_threads=3, test_fraction=0.25, embargo_hours=2, leak_margin=0.2, seed=9)
    p = TrainParams.from_settings(s)
    assert (p.n_estimators, p.max_depth, p.learning_rate, p.early_stopping, p.threads) == (
        77, 4, 0.2, 5, 3)
    assert (p.test_fraction, p.embargo_hours, p.leak_margin, p.seed, p.val_fraction) == (
        0.25, 2, 0.2, 9, 0.1)


# ---- training and metrics --------------------------------------------------------------------
def test_clean_data_gives_sane_metrics_and_no_leak_flag(tmp_path):
    ds = dataset(tmp_path, market(), FEATURES)
    result = train_and_evaluate(ds, small_params(), tmp_path / "model.ubj")
    m = result.metrics
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "baseline_accuracy", "auc"):
        assert 0.0 <= m[key] <= 1.0, key
    assert 0.3 < m["baseline_accuracy"] < 0.7
    assert m["log_loss"] > 0
    assert m["test_rows"] == result.split.test_rows
    assert m["n_trees"] == m["best_iteration"] + 1
    assert list(result.importance) == FEATURES
    assert sum(result.importance.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in result.importance.values())
    assert result.leakage is False
    assert "no sign of leakage" in result.leakage_reason and "\n" not in result.leakage_reason
    assert result.params["n_estimators"] == 40


def test_leaky_feature_is_flagged(tmp_path):
    frame = market()
    rng = np.random.default_rng(0)
    frame["peek"] = frame["future_return"] + rng.normal(0, 0.3, len(frame))
    ds = dataset(tmp_path, frame, [*FEATURES, "peek"])
    result = train_and_evaluate(ds, small_params(), tmp_path / "model.ubj")
    assert result.leakage is True
    assert "baseline" in result.leakage_reason and "\n" not in result.leakage_reason
    assert max(result.importance, key=result.importance.get) == "peek"


def test_saved_model_is_native_ubj_and_predicts_like_the_evaluation(tmp_path):
    ds = dataset(tmp_path, market(), FEATURES)
    path = tmp_path / "model.ubj"
    result = train_and_evaluate(ds, small_params(), path)
    assert result.metrics["n_trees"] < 40  # early stopping cut the model
    raw = path.read_bytes()
    assert raw[:1] == b"{" and b"learner" in raw[:200]  # UBJSON object, not a pickle
    assert not list(tmp_path.glob("*.tmp"))
    booster = load_booster(path)
    assert booster.num_boosted_rounds() == result.metrics["n_trees"]
    _, _, test, _ = split_by_time(ds.frame, small_params())
    p = predict_proba(booster, ds.frame.iloc[test], FEATURES)
    acc = float(((p > 0.5) == (ds.y[test] == 1)).mean())
    assert acc == pytest.approx(result.metrics["test_accuracy"])
    train, val, _, _ = split_by_time(ds.frame, small_params())
    for idx, key in ((train, "train_accuracy"), (val, "val_accuracy")):
        q = predict_proba(booster, ds.frame.iloc[idx], FEATURES)
        assert float(((q > 0.5) == (ds.y[idx] == 1)).mean()) == pytest.approx(
            result.metrics[key], abs=1e-6)
    clf = xgboost.XGBClassifier()
    clf.load_model(path)  # an sklearn-style backend can load it too
    assert clf.predict_proba(ds.X[test])[:, 1] == pytest.approx(p, rel=1e-6)


def test_predict_uses_the_given_feature_order(tmp_path):
    ds = dataset(tmp_path, market(), FEATURES)
    path = tmp_path / "model.ubj"
    train_and_evaluate(ds, small_params(), path)
    booster = load_booster(path)
    shuffled = ds.frame[["symbol", *reversed(FEATURES)]]
    assert predict_proba(booster, shuffled, FEATURES) == pytest.approx(
        predict_proba(booster, ds.frame, FEATURES))
    with pytest.raises(DataError, match="noise"):
        predict_proba(booster, ds.frame.drop(columns="noise"), FEATURES)


def test_load_booster_refuses_pickles_and_missing_files(tmp_path):
    pkl = tmp_path / "xgb_model.pkl"
    pkl.write_bytes(b"\x80\x04")
    with pytest.raises(StoreError, match="never loaded"):
        load_booster(pkl)
    with pytest.raises(StoreError, match="does not exist"):
        load_booster(tmp_path / "gone.ubj")
    bad = tmp_path / "bad.ubj"
    bad.write_bytes(b"not a model")
    with pytest.raises(StoreError):
        load_booster(bad)


# ---- the child process -----------------------------------------------------------------------
def test_child_training_returns_the_same_kind_of_result(tmp_path):
    path = write_csv(tmp_path, market().drop(columns="future_return"))
    result = train_in_child(path, target="target", features=FEATURES, params=small_params(),
                            workdir=tmp_path / "work", timeout=120)
    assert isinstance(result, TrainResult)
    assert Path(result.model_path) == tmp_path / "work" / MODEL_NAME
    assert Path(result.model_path).is_file()
    assert list(result.importance) == FEATURES
    assert result.leakage is False
    assert result.split.test_rows == result.metrics["test_rows"] > 0
    load_booster(result.model_path)


def test_timeout_kills_the_child_and_leaves_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TESTING", "1")
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "60")
    path = write_csv(tmp_path, market())
    work = tmp_path / "work"
    started = time.monotonic()
    with pytest.raises(TrainingTimeout) as exc:
        train_in_child(path, target="target", features=FEATURES, params=small_params(),
                       workdir=work, timeout=1.5)
    assert time.monotonic() - started < 1.5 + 2.0
    assert "QT_CLM_TRAIN_TIMEOUT=1.5" in str(exc.value) and "\n" not in str(exc.value)
    assert not (work / MODEL_NAME).exists()


def test_cancel_stops_the_child(tmp_path, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TESTING", "1")
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "60")
    path = write_csv(tmp_path, market())
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(TrainingCancelled):
        train_in_child(path, target="target", features=FEATURES, params=small_params(),
                       workdir=tmp_path / "work", timeout=60, cancel=cancel)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "work" / MODEL_NAME).exists()


def test_data_error_in_the_child_arrives_as_one_line(tmp_path):
    path = write_csv(tmp_path, market().drop(columns="future_return"))
    with pytest.raises(DataError) as exc:
        train_in_child(path, target="no_such_target", features=FEATURES, params=small_params(),
                       workdir=tmp_path / "work", timeout=120)
    msg = str(exc.value)
    assert "\n" not in msg and "no_such_target" in msg
    assert not (tmp_path / "work" / MODEL_NAME).exists()


def test_split_error_in_the_child_arrives_as_one_line(tmp_path):
    path = write_csv(tmp_path, market(symbols=12, bars=40).drop(columns="future_return"))
    with pytest.raises(DataError, match="too little time"):
        train_in_child(path, target="target", features=FEATURES,
                       params=small_params(embargo_hours=24.0), workdir=tmp_path / "work",
                       timeout=120)


def test_child_crash_is_training_error_naming_the_exit(tmp_path, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TESTING", "1")
    monkeypatch.setenv("CLM_TRAY_FAULT", "train")
    path = write_csv(tmp_path, market())
    with pytest.raises(TrainingError) as exc:
        train_in_child(path, target="target", features=FEATURES, params=small_params(),
                       workdir=tmp_path / "work", timeout=60)
    assert "SIGKILL" in str(exc.value)
    assert not (tmp_path / "work" / MODEL_NAME).exists()


def test_child_stops_when_the_app_is_killed(tmp_path):
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "app.py"
    script.write_text(
        "from pathlib import Path\n"
        "from clm_tray.core.ml.train_result import TrainParams\n"
        "from clm_tray.core.ml.trainprocess import train_in_child\n"
        "if __name__ == '__main__':\n"
        f"    train_in_child({str(tmp_path / 'none.csv')!r}, target='target', features=None,\n"
        f"                   params=TrainParams(), workdir=Path({str(tmp_path / 'w')!r}),\n"
        "                   timeout=120)\n"
    )
    env = {**os.environ, "CLM_TRAY_TESTING": "1", "CLM_TRAY_TRAIN_SLEEP": "60"}
    app = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 60
        trainers: list = []
        while time.monotonic() < deadline and not trainers:
            time.sleep(0.2)
            trainers = [c for c in psutil.Process(app.pid).children()
                        if "spawn_main" in " ".join(c.cmdline())]
        assert trainers, "the training child never started"
        app.kill()
        app.wait(10)
        # Generous for a loaded machine, still well inside the child's 60 s sleep: a child that
        # does not watch its parent would outlive this wait.
        _gone, alive = psutil.wait_procs(trainers, timeout=30)
        # An orphan that exited but has not been reaped yet (PID 1 in a container may not
        # reap) is a zombie: it no longer runs, which is what this test is about.
        running = []
        for p in alive:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    running.append(p)
            except psutil.NoSuchProcess:
                pass
        assert not running
    finally:
        app.kill()
