"""The training process fits the same model without scikit-learn, and never imports it."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import psutil
import pytest
import xgboost
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score as sk_roc_auc

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.ml.data import load_dataset
from clm_tray.core.ml.fit import fit_booster, make_classifier
from clm_tray.core.ml.metrics import log_loss, roc_auc_score
from clm_tray.core.ml.split import split_by_time
from clm_tray.core.ml.train_result import TrainParams
from clm_tray.core.ml.trainprocess import train_in_child

PARAMS = TrainParams(n_estimators=40, early_stopping=10, threads=1)


def test_native_fit_is_the_same_model_as_the_classifier(tmp_path):
    ds = load_dataset(write_small_data(tmp_path / "train.csv", symbols=6, bars=400))
    train, val, _test, _ = split_by_time(ds.frame, PARAMS)
    X, y = ds.X, ds.y
    clf = make_classifier(PARAMS)
    clf.fit(X[train], y[train], eval_set=[(X[val], y[val])], verbose=False)
    booster, best = fit_booster(xgboost.QuantileDMatrix(X[train], y[train]),
                                (X[val], y[val]), PARAMS)
    assert best == clf.best_iteration
    np.testing.assert_allclose(booster.inplace_predict(X),
                               clf.get_booster().inplace_predict(X), atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_metrics_agree_with_scikit_learn(dtype):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    p = rng.random(5000).astype(dtype)
    p[:1500] = np.round(p[:1500], 1)  # many ties
    p[0], p[1] = 0.0, 1.0  # the clipping edges
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_loss = sk_log_loss(y, p, labels=[0, 1])
    assert roc_auc_score(y, p) == pytest.approx(sk_roc_auc(y, p), abs=1e-12)
    assert log_loss(y, p, labels=[0, 1]) == pytest.approx(expected_loss, rel=1e-6)


def test_the_training_process_never_loads_scikit_learn(tmp_path, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "3")  # time to look at the running child
    csv = write_small_data(tmp_path / "train.csv", symbols=6, bars=400)
    seen: list[list[str]] = []
    done = threading.Event()

    def watch() -> None:
        me = psutil.Process()
        while not done.is_set():
            for child in me.children():
                try:
                    paths = [m.path for m in child.memory_maps()]
                except psutil.Error:
                    continue
                if any("xgboost" in p for p in paths):  # fully started: XGBoost is loaded
                    seen.append(paths)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = train_in_child(csv, target="target", features=None, params=PARAMS,
                                workdir=tmp_path / "work", timeout=240)
    finally:
        done.set()
        watcher.join()
    assert result.metrics["test_accuracy"] > 0
    assert seen, "never saw the training process with XGBoost loaded"
    assert not [p for p in seen[-1] if "sklearn" in p or "scikit_learn" in p]


def test_a_cli_cycle_never_imports_scikit_learn(small_workspace):
    import json
    import subprocess
    import sys

    probe = ("import json, sys\nfrom clm_tray.cli import main\ncode = main(['retrain', "
             "'--no-deploy'])\nprint('PROBE ' + json.dumps([code, 'sklearn' in sys.modules "
             "and sys.modules['sklearn'] is not None]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=small_workspace, text=True,
                          capture_output=True, timeout=240)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, proc.stdout + proc.stderr
    code, loaded = json.loads(line[-1][6:])
    assert code == 0, proc.stderr
    assert loaded is False


def write_small_data(path, symbols=6, bars=400):
    """Small demo data (tests/conftest.py has the same helper; several conftest modules
    make ``from conftest import`` ambiguous)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save(generate(symbols=symbols, bars=bars, seed=7), path)
    return path


def test_starting_a_training_never_imports_numpy_or_xgboost_in_the_callers_process():
    import json
    import subprocess
    import sys

    probe = ("import json, sys\nfrom clm_tray.core.ml import trainprocess, train_result\n"
             "print(json.dumps([m for m in ('numpy', 'pandas', 'xgboost', 'pyarrow') "
             "if m in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], text=True, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
