"""Honest progress (issue 13, point 3): the bar follows XGBoost's boosting rounds, reported
by the training child over its pipe and published as cycle.stage events with time left."""

from __future__ import annotations

from clm_tray.core.app import events as ev
from clm_tray.core.config.sources import load_settings
from clm_tray.core.ml.data import load_dataset
from clm_tray.core.ml.train_result import TrainParams
from clm_tray.core.ml.trainprocess import train_in_child


def test_the_training_child_reports_boosting_rounds_as_they_happen(small_workspace, tmp_path):
    s = load_settings(small_workspace / ".env", cwd=small_workspace).settings
    data = s.resolved_data_path
    features = load_dataset(data, target=s.target).features
    reports: list[tuple[int, int]] = []
    result = train_in_child(data, target=s.target, features=features,
                            params=TrainParams.from_settings(s), workdir=tmp_path / "w",
                            timeout=120, on_round=lambda d, t: reports.append((d, t)))
    boosted = result.metrics["n_trees"]
    assert len(reports) >= min(boosted, 5)
    done = [d for d, _t in reports]
    assert done == sorted(done) and done[0] == 1
    assert all(t == s.n_estimators for _d, t in reports[:-1])
    assert reports[-1][0] == reports[-1][1] >= boosted  # the end, said as such


def test_a_cycle_publishes_round_progress_that_only_moves_forward(engine_factory):
    engine = engine_factory()
    seen: list[ev.Event] = []
    engine.bus.subscribe(lambda e: seen.append(e) if e.kind == ev.CYCLE_STAGE else None)
    assert engine.retrain().outcome == "deployed"
    progress = [float(e.data["progress"]) for e in seen if e.level != "warning"]
    assert progress == sorted(progress), progress
    rounds = [e.data for e in seen if e.data.get("rounds_total")]
    assert rounds, [e.data for e in seen]
    assert all(r["stage"] == "train" and r["message"].startswith("round ") for r in rounds)
    assert rounds[-1]["rounds_done"] == rounds[-1]["rounds_total"]
    assert all(r.get("seconds_left") is not None for r in rounds)
