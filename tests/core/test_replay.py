"""The replay's own rules, in-process on small real data (real XGBoost, no stubs)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_tray.core.config.settings import Settings
from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.demo.sample import SAMPLE_END
from clm_tray.core.ml import replay, replay_training
from clm_tray.core.ml.data import load_dataset

SMALL = {"n_estimators": 40, "early_stopping": 10, "train_threads": 1}


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "hourly.csv"
    save(generate(symbols=6, bars=720, end=SAMPLE_END), path)
    return path


def test_every_model_learns_only_from_rows_whose_next_bar_had_closed(hourly, monkeypatch):
    seen: list[tuple[int, int]] = []  # (check time, newest row the model trained on)
    real_fit = replay_training.Trainer._fit

    def spying_fit(self, at, known):  # noqa: ANN001, ANN202 - the real method, observed
        seen.append((at, int(self.ts[known - 1])))
        return real_fit(self, at, known)

    monkeypatch.setattr(replay_training.Trainer, "_fit", spying_fit)
    result = replay.run_replay(load_dataset(hourly), Settings(**SMALL), start="2025-12-08")

    bar = 3_600_000_000_000
    assert len(seen) == result.trainings >= 3  # a retrain a day, at least
    for at, newest in seen:
        assert newest <= at - bar  # its label needed the next bar's close
        assert newest > at - 2 * bar  # and every row known then was used
    first = pd.Timestamp(result.start).value
    assert seen[0][0] == first


def test_daily_data_is_reported_per_month(tmp_path):
    frame = generate(symbols=4, bars=700, end=SAMPLE_END)
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    hours = ((stamps - stamps.min()) / pd.Timedelta(hours=1)).astype(int)
    frame["timestamp"] = (pd.Timestamp("2023-01-01", tz="UTC")
                          + pd.to_timedelta(hours, unit="D")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    settings = Settings(**SMALL, retrain_hours=24 * 60, check_minutes=24 * 60,
                        drift_hours=24 * 60, perf_hours=24 * 60, embargo_hours=48)

    result = replay.run_replay(load_dataset(path), settings)

    assert result.period == "month"
    starts = [p.start for p in result.policy("never").periods]
    assert all(s[8:10] == "01" for s in starts)  # each period starts on the 1st
    assert len(starts) == len(set(starts)) >= 14
    assert sum(p.rows for p in result.policy("always").periods) == result.rows
    rows_scored = np.array([p.rows for p in result.policy("configured").periods])
    assert (rows_scored <= 4 * 31).all()


def test_the_tray_runs_the_replay_in_its_worker_with_progress_and_cancel(small_workspace,
                                                                           hourly):
    from clm_tray.core.app import events as ev
    from clm_tray.core.app.compose import open_engine
    from clm_tray.core.config.sources import load_settings
    from clm_tray.core.errors import TrainingCancelled
    from clm_tray.core.ml.replay_result import ReplayResult

    (small_workspace / "data" / "train.csv").write_bytes(hourly.read_bytes())
    engine = open_engine(load_settings(small_workspace / ".env", cwd=small_workspace), "worker")
    heard: list[float] = []
    engine.bus.subscribe(lambda e: heard.append(e.data["progress"])
                         if e.kind == ev.REPLAY_PROGRESS else None)
    try:
        stop = threading.Event()
        stop.set()
        with pytest.raises(TrainingCancelled):
            engine.replay("2025-12-10", cancel=stop)
        result = engine.replay("2025-12-10T12:00")
    finally:
        engine.close()
    assert isinstance(result, ReplayResult)
    assert [p.name for p in result.policies] == ["configured", "never", "always"]
    assert result.start.startswith("2025-12-10T12")
    assert heard and heard[-1] == 1.0 and heard == sorted(heard)
