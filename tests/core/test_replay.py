"""The replay's own rules, in-process on small real data (real XGBoost, no stubs)."""

from __future__ import annotations

import threading
from dataclasses import asdict
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
from clm_tray.core.monitor import windows

SMALL = {"n_estimators": 40, "early_stopping": 10, "train_threads": 1}


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "hourly.csv"
    save(generate(symbols=6, bars=720, end=SAMPLE_END), path)
    return path


def test_every_model_learns_only_from_rows_whose_next_bar_had_closed(hourly, monkeypatch):
    seen: list[tuple[int, int]] = []  # (check time, newest row the model trained on)
    real_fit = replay_training.Trainer._fit

    def spying_fit(self, at, known, *rest):  # noqa: ANN001, ANN002, ANN202 - the real one
        seen.append((at, int(self.ts[known - 1])))
        return real_fit(self, at, known, *rest)

    monkeypatch.setattr(replay_training.Trainer, "_fit", spying_fit)
    result = replay.run_replay(load_dataset(hourly), Settings(**SMALL), start="2025-12-08")

    bar = 3_600_000_000_000
    assert len(seen) == result.trainings >= 3  # a retrain a day, at least
    for at, newest in seen:
        assert newest <= at - bar  # its label needed the next bar's close
        assert newest > at - 2 * bar  # and every row known then was used
    first = pd.Timestamp(result.start).value
    assert seen[0][0] == first


@pytest.mark.parametrize("window_hours", [0, 48])
def test_drift_is_checked_on_the_rows_the_engine_would_have_loaded(hourly, monkeypatch,
                                                                    window_hours):
    """At each drift check the replay reads exactly the rows the engine would: those its loader
    holds then (it drops the newest bar until its label is known), picked by the engine's own
    ``monitor.windows.drift_frames`` for the champion of that moment."""
    bar = 3_600_000_000_000
    state: dict[str, object] = {}
    checked: list[bool] = []
    real_step, real_drift = replay._Walk._step_configured, replay.drift_report

    def step(self, at, rh):  # noqa: ANN001, ANN202
        state.update(walk=self, at=at)
        return real_step(self, at, rh)

    def drift(reference, current, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        walk, at = state["walk"], state["at"]
        champ, frame = walk.configured.champion, walk.t.frame
        ts = frame["timestamp"].array.asi8
        manifest = {"data_last_timestamp": pd.Timestamp(ts[ts <= champ.at - bar].max(),
                                                        tz="UTC").isoformat(),
                    "split": {"train_end": pd.Timestamp(champ.train_end, tz="UTC").isoformat()}}
        loaded = frame[ts <= at - bar]  # what the engine's loader holds at `at`
        expected = windows.drift_frames(loaded, manifest, window_hours)[1]
        checked.append(list(current.index) == list(expected.index))
        return real_drift(reference, current, *args, **kw)

    monkeypatch.setattr(replay._Walk, "_step_configured", step)
    monkeypatch.setattr(replay, "drift_report", drift)
    settings = Settings(**SMALL, edge_gate=False, drift_window_hours=window_hours)
    replay.run_replay(load_dataset(hourly), settings, start="2025-12-08")

    assert len(checked) >= 5 and all(checked)


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


def _trained(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record every real training: (thread name, rows it could use, XGBoost threads)."""
    seen: list[tuple[str, int, int]] = []
    real_fit = replay_training.Trainer._fit

    def spying_fit(self, at, known, threads=0):  # noqa: ANN001, ANN202 - the real one
        seen.append((threading.current_thread().name, known, threads))
        return real_fit(self, at, known, threads)

    monkeypatch.setattr(replay_training.Trainer, "_fit", spying_fit)
    return seen


def test_models_trained_ahead_for_always_are_reused_and_change_nothing(hourly, monkeypatch):
    """With two cores the `always` policy's models are trained ahead in a background thread
    and the configured policy reuses any of them it needs; the replay's answer is exactly
    the one it gives when one thread trains every model itself."""
    dataset = load_dataset(hourly)
    seen = _trained(monkeypatch)
    alone = replay.run_replay(dataset, Settings(**SMALL), start="2025-12-08")
    by_one = list(seen)
    seen.clear()
    shared = replay.run_replay(dataset, Settings(**{**SMALL, "train_threads": 2}),
                               start="2025-12-08")

    shared.seconds = alone.seconds = 0.0  # the only field allowed to differ
    assert asdict(shared) == asdict(alone)
    assert {name for name, _k, _t in by_one} == {"MainThread"}
    ahead = [known for name, known, _t in seen if name == "replay-ahead"]
    assert ahead and all(t == 1 for name, _k, t in seen if name == "replay-ahead")
    # every model was trained once, by one thread or the other, and the same ones as alone
    assert sorted(k for _n, k, _t in seen) == sorted({k for _n, k, _t in seen}) == \
        sorted(k for _n, k, _t in by_one)
    assert not any(t.name == "replay-ahead" for t in threading.enumerate())


def test_a_policy_retraining_on_the_same_rows_as_always_reuses_its_model(hourly, monkeypatch):
    """Checked by age only, the configured policy retrains on `always`'s clock: every model it
    needs is one `always` trains (ahead, in the background), so each is trained once."""
    seen = _trained(monkeypatch)
    settings = Settings(**{**SMALL, "train_threads": 2, "drift_hours": 8760,
                           "perf_hours": 8760})
    result = replay.run_replay(load_dataset(hourly), settings, start="2025-12-08")

    configured, always = result.policy("configured"), result.policy("always")
    assert configured.retrains == always.retrains >= 3
    assert result.trainings == len(seen) == always.retrains + 1  # + the shared first model
    assert len({k for _n, k, _t in seen}) == len(seen)
    assert any(name == "replay-ahead" for name, _k, _t in seen)


def test_the_always_plan_is_exactly_what_the_always_policy_asks_for(hourly):
    """Training ahead only pays if the plan is right: the background thread trains the
    `always` retrains the walk will ask for, no more and no fewer."""
    dataset = load_dataset(hourly)
    settings = Settings(**SMALL)
    with_plan: list[list[tuple[int, int]]] = []
    asked: list[int] = []

    class Spy(replay_training.Trainer):
        def train_ahead(self, plan):  # noqa: ANN001, ANN202 - records, then the real one
            with_plan.append(plan)
            return super().train_ahead(plan)

    real_train = replay._Walk._train

    def spying_train(self, policy, now):  # noqa: ANN001, ANN202
        if policy.name == "always":
            before = policy.last_known
            model = real_train(self, policy, now)
            if policy.last_known != before:
                asked.append(policy.last_known)
            return model
        return real_train(self, policy, now)

    mp = pytest.MonkeyPatch()
    mp.setattr(replay, "Trainer", Spy)
    mp.setattr(replay._Walk, "_train", spying_train)
    try:
        result = replay.run_replay(dataset, settings, start="2025-12-08")
    finally:
        mp.undo()
    assert len(with_plan) == 1
    assert [known for _at, known in with_plan[0]] == asked
    assert result.policy("always").retrains == len(asked) >= 3


def test_cancel_stops_the_thread_training_ahead(hourly):
    dataset = load_dataset(hourly)
    stop = threading.Event()

    def cancel_soon(done: float, _message: str) -> None:
        if done > 0.2:
            stop.set()

    from clm_tray.core.errors import TrainingCancelled

    with pytest.raises(TrainingCancelled):
        replay.run_replay(dataset, Settings(**{**SMALL, "train_threads": 2}),
                          start="2025-12-08", progress=cancel_soon, cancel=stop)
    assert not any(t.name == "replay-ahead" for t in threading.enumerate())
