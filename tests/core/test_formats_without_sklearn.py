"""xgb_model.pkl without scikit-learn: the default install and the built app leave it out.

The trader's backend unpickles an ``XGBClassifier``; XGBoost builds that class only when
scikit-learn is installed, so clm-tray answers XGBoost's two questions itself (formats.py). The
judge here is XGBoost with scikit-learn installed: the bytes must be the same, and the backend
(a process that has scikit-learn, like the seed's) must get the same predictions.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost

from clm_tray.core.ml.modelfile import save_model
from clm_tray.core.registry.formats import model_bytes

pytest.importorskip("sklearn")  # the reference: what XGBoost writes with scikit-learn

BLOCK_SKLEARN = "import sys\nsys.modules['sklearn'] = None  # as if it were not installed\n"


def _small_model(path: Path) -> np.ndarray:
    """A real model saved as the engine saves every version; returns rows to predict."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    matrix = xgboost.DMatrix(x, label=y, feature_names=["ret_1", "funding_rate", "volume_z"])
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                            matrix, num_boost_round=12)
    save_model(booster, None, path)  # what the trainers write (estimator type included)
    return x[:25]


def _run(probe: str, *args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", BLOCK_SKLEARN + probe, *args], text=True,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout.splitlines()


def test_without_scikit_learn_the_pickle_is_the_same_bytes_and_the_backend_predicts_the_same(
        tmp_path):
    model = tmp_path / "model.ubj"
    rows = _small_model(model)
    probe = ("import json, pathlib, xgboost.sklearn\n"
             "from clm_tray.core.registry.formats import model_bytes\n"
             "out = pathlib.Path(sys.argv[2])\n"
             "for suffix in ('.pkl', '.joblib'):\n"
             "    (out / ('lean' + suffix)).write_bytes(model_bytes(sys.argv[1], suffix))\n"
             "print(json.dumps({'sklearn_installed': xgboost.sklearn.SKLEARN_INSTALLED,\n"
             "                  'stand_in_left': 'sklearn.base' in sys.modules\n"
             "                  or hasattr(xgboost.XGBClassifier, '_estimator_type'),\n"
             "                  'sklearn': sys.modules.get('sklearn', 'absent')}))\n")
    state = json.loads(_run(probe, str(model), str(tmp_path))[-1])
    # XGBoost really ran without scikit-learn, and nothing of the stand-in stayed behind.
    assert state == {"sklearn_installed": False, "stand_in_left": False, "sklearn": None}

    lean = (tmp_path / "lean.pkl").read_bytes()
    assert lean == model_bytes(model, ".pkl")  # what XGBoost writes with scikit-learn here

    clf = pickle.loads(lean)  # the backend's side: a process with scikit-learn
    assert type(clf) is xgboost.XGBClassifier and clf.n_classes_ == 2
    expected = xgboost.Booster(model_file=str(model)).predict(xgboost.DMatrix(rows))
    np.testing.assert_allclose(clf.predict_proba(rows)[:, 1], expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(clf.predict(rows), (expected > 0.5).astype(int))

    import joblib

    from_joblib = joblib.load(tmp_path / "lean.joblib")
    np.testing.assert_allclose(from_joblib.predict_proba(rows), clf.predict_proba(rows),
                               rtol=0, atol=0)


def test_an_xgboost_that_needs_more_of_scikit_learn_is_one_line_naming_what_to_install(
        tmp_path):
    """A later XGBoost might import more of scikit-learn while loading the model."""
    model = tmp_path / "model.ubj"
    _small_model(model)
    probe = ("import xgboost\n"
             "def load_model(self, fname):  # as a later XGBoost might\n"
             "    from sklearn.utils import check_array  # noqa: F401\n"
             "xgboost.XGBClassifier.load_model = load_model\n"
             "from clm_tray.core.errors import ConfigError\n"
             "from clm_tray.core.registry.formats import model_bytes\n"
             "try:\n    model_bytes(sys.argv[1], '.pkl')\n"
             "except ConfigError as exc:\n    print(exc)\n")
    lines = _run(probe, str(model))
    assert len(lines) == 1 and lines[0].endswith("pip install scikit-learn"), lines
    assert "a pickled XGBClassifier" in lines[0]
