"""QT_CLM_DEVICE: XGBoost trains on the CPU by default, on the GPU when asked and able."""

from __future__ import annotations

import shutil

import pytest
import xgboost

from clm_tray.core.config.sources import load_settings
from clm_tray.core.errors import ConfigError
from clm_tray.core.ml.fit import make_classifier
from clm_tray.core.ml.train_result import TrainParams

CUDA_BUILD = bool(xgboost.build_info().get("USE_CUDA"))


def test_training_runs_on_the_cpu_unless_told_otherwise(tmp_path):
    settings = load_settings(environ={}, cwd=tmp_path).settings
    params = TrainParams.from_settings(settings)
    assert params.device == "cpu"
    assert make_classifier(params).get_params()["device"] == "cpu"


def test_a_wrong_device_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="QT_CLM_DEVICE"):
        load_settings(environ={"QT_CLM_DEVICE": "tpu"}, cwd=tmp_path)


@pytest.mark.skipif(CUDA_BUILD, reason="this XGBoost is the CUDA build")
def test_cuda_on_the_cpu_only_build_is_one_line_that_says_what_to_install(tmp_path):
    settings = load_settings(environ={"QT_CLM_DEVICE": "cuda"}, cwd=tmp_path).settings
    with pytest.raises(ConfigError) as info:
        make_classifier(TrainParams.from_settings(settings))
    message = str(info.value)
    assert "\n" not in message
    assert "QT_CLM_DEVICE=cuda" in message and "GPU" in message


@pytest.mark.skipif(not (CUDA_BUILD and shutil.which("nvidia-smi")), reason="needs a GPU")
def test_cuda_trains_on_the_gpu(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 4)), rng.integers(0, 2, 500)
    clf = make_classifier(TrainParams(device="cuda", n_estimators=5, early_stopping=0))
    clf.fit(X, y)
    config = clf.get_booster().save_config()
    assert '"device":"cuda' in config.replace(" ", "")
