"""Out-of-core training: the streamed path trains the same model as the in-memory one."""

from __future__ import annotations

import numpy as np
import pytest

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.ml import prepared
from clm_tray.core.ml.batches import PreparedFile, train_streaming
from clm_tray.core.ml.data import load_dataset
from clm_tray.core.ml.modelfile import load_booster
from clm_tray.core.ml.train_result import TrainParams
from clm_tray.core.ml.training import train_and_evaluate

PARAMS = TrainParams(n_estimators=40, early_stopping=10, threads=1)


@pytest.fixture
def dataset(tmp_path):
    return load_dataset(write_small_data(tmp_path / "train.csv", symbols=6, bars=400))


def test_one_batch_streamed_is_the_in_memory_model(dataset, tmp_path):
    path = prepared.write_prepared(dataset, tmp_path / "d.arrow")
    assert len(PreparedFile(path).batch_rows) == 1
    memory = train_and_evaluate(dataset, PARAMS, tmp_path / "memory.ubj")
    streamed = train_streaming(path, PARAMS, tmp_path / "streamed.ubj")
    assert streamed.split == memory.split
    for key, value in memory.metrics.items():
        assert streamed.metrics[key] == pytest.approx(value, abs=1e-6), key
    assert streamed.edge == memory.edge  # the edge gate's evidence, bar by bar
    X = dataset.X
    np.testing.assert_allclose(load_booster(streamed.model_path).inplace_predict(X),
                               load_booster(memory.model_path).inplace_predict(X), atol=1e-6)


def test_many_small_batches_train_an_equally_good_model(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(prepared, "BATCH_ROWS", 300)
    path = prepared.write_prepared(dataset, tmp_path / "d.arrow")
    assert len(PreparedFile(path).batch_rows) == 8  # 2,394 rows in batches of 300
    memory = train_and_evaluate(dataset, PARAMS, tmp_path / "memory.ubj")
    streamed = train_streaming(path, PARAMS, tmp_path / "streamed.ubj")
    assert streamed.split == memory.split
    assert streamed.metrics["test_rows"] == memory.metrics["test_rows"]
    # The quantile sketch is built from batches, so split points may differ slightly.
    assert abs(streamed.metrics["test_accuracy"] - memory.metrics["test_accuracy"]) <= 0.03


def test_a_cycle_on_data_above_the_streaming_size_trains_and_versions(engine_factory,
                                                                     monkeypatch):
    monkeypatch.setenv("CLM_TRAY_STREAM_ROWS", "100")  # the small data counts as large
    engine = engine_factory()
    result = engine.retrain(deploy=False)
    assert result.outcome == "trained", result.reason
    version = engine.store.get(result.version)
    m = version.manifest
    assert m["metrics"]["test_rows"] == m["split"]["test_rows"] > 0
    assert m["split"]["train_rows"] + m["split"]["val_rows"] + m["split"]["test_rows"] <= \
        m["data"]["rows"]
    assert load_booster(version.model_path).num_boosted_rounds() == m["metrics"]["n_trees"]


def write_small_data(path, symbols=6, bars=400):
    """Small demo data (tests/conftest.py has the same helper; several conftest modules
    make ``from conftest import`` ambiguous)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save(generate(symbols=symbols, bars=bars, seed=7), path)
    return path
