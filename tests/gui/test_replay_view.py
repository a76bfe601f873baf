"""The dashboard's replay view, on a real engine and a real Qt event loop."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt

from clm_tray.core.demo.datafile import save
from clm_tray.core.demo.generator import generate
from clm_tray.core.demo.sample import SAMPLE_END


def _longer_history(workspace: Path) -> None:
    """30 days of hourly bars, so the replay has history to train on and days to score."""
    save(generate(symbols=6, bars=720, end=SAMPLE_END),
              workspace / "data" / "train.csv")


def test_replay_view_draws_the_three_policies_and_the_baseline_from_the_engine(
        qtbot, make_tray_app, small_workspace):
    _longer_history(small_workspace)
    app = make_tray_app(tray=False, retrain_hours=96, drift_hours=48, perf_hours=48)
    view = app.open_dashboard("replay").replay_view
    assert app.dashboard.current_view() == "replay"

    assert view.run()
    assert not view.run_button.isEnabled()  # one replay at a time
    qtbot.waitUntil(lambda: view.result is not None, timeout=240_000)

    result = view.result
    periods = result.policy("configured").periods
    assert len(periods) >= 10  # one point per day of hourly data
    for key in ("configured", "never", "always"):
        points = view.series[key].points()
        wanted = result.policy(key).periods
        assert [round(p.y(), 6) for p in points] == [round(d.accuracy * 100, 6) for d in wanted]
    baseline = [p.y() for p in view.series["baseline"].points()]
    assert baseline == [d.baseline * 100 for d in periods]
    first_x = view.series["configured"].points()[0].x()
    assert first_x == datetime.fromisoformat(periods[0].start).timestamp() * 1000
    assert view.progress_bar.value() == 100
    assert "Your policy" in view.verdict.text() and "%" in view.verdict.text()
    qtbot.waitUntil(view.run_button.isEnabled)
    assert not view.cancel_button.isEnabled()


def test_cancel_stops_a_running_replay_and_says_nothing_changed(
        qtbot, make_tray_app, small_workspace):
    _longer_history(small_workspace)
    app = make_tray_app(tray=False)
    view = app.open_dashboard("replay").replay_view

    assert view.run()
    assert view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: view.progress_bar.value() > 0 or "trained" in view.status.text(),
                    timeout=120_000)  # the walk is under way (first model trained)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in view.status.text(), timeout=120_000)
    assert view.result is None
    assert not list(small_workspace.glob("store/versions/*"))  # nothing was stored
    qtbot.waitUntil(view.run_button.isEnabled)
