"""One load per cycle: the training process trains on exactly the rows the cycle loaded."""

from __future__ import annotations

import threading

from clm_tray.core.app import events as ev
from clm_tray.core.demo.feed import feed


def test_rows_appended_while_training_are_not_trained_on_and_the_manifest_says_so(
        engine_factory, small_workspace, monkeypatch):
    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "2")  # the training process waits a moment
    engine = engine_factory()
    training = threading.Event()
    engine.bus.subscribe(lambda e: e.kind == ev.CYCLE_STAGE and e.data.get("stage") == "train"
                         and training.set())
    results = []
    cycle = threading.Thread(target=lambda: results.append(engine.retrain(deploy=False)))
    cycle.start()
    assert training.wait(120)
    feed(small_workspace / "data" / "train.csv", hours=48)  # the collector appends meanwhile
    cycle.join(240)
    result = results[0]
    assert result.outcome == "trained", result.reason
    m = engine.store.get(result.version).manifest
    # The model was trained and tested on the loaded rows, not on the file as it is now.
    assert m["split"]["test_end"] == m["data"]["end"]
    fresh = engine.load_data().fingerprint
    assert fresh.rows > m["data"]["rows"] and fresh.end > m["data"]["end"]
