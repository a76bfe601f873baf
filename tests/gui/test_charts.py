"""Charts a trader can read (issue 13, point 6)."""

from __future__ import annotations

from clm_tray.core.app.status import DriftReport, FeatureDrift
from clm_tray.gui.charts.accuracy import AccuracyChart
from clm_tray.gui.charts.axes import nice_axis
from clm_tray.gui.charts.drift import DriftChart
from clm_tray.gui.charts.importance import ImportanceChart


def test_axes_land_on_round_numbers():
    assert nice_axis(0, 21.3)[:3] == (0, 25, 6)  # 0 5 10 15 20 25, not 0 5.3 10.6 …
    low, high, ticks, _ = nice_axis(49.9, 56.8)
    assert (low, high) == (48, 58) and ticks == 6
    assert nice_axis(0, 0.31) == (0, 0.4, 5, 1)  # 0.0 0.1 0.2 0.3 0.4
    assert nice_axis(0, 1.1) == (0, 1.25, 6, 2)  # 0.00 0.25 … 1.25


def shown(chart) -> None:  # noqa: ANN001
    chart.resize(600, 400)
    chart.show()
    chart.sync()


def test_versions_are_marked_by_deployment_and_live_only_where_measured(qtbot):
    chart = AccuracyChart()
    qtbot.addWidget(chart)
    rows = [
        {"version": "v0001-a", "test_accuracy": 0.55, "baseline": 0.51, "live_accuracy": 0.53,
         "deployment": "rolled back"},
        {"version": "v0002-b", "test_accuracy": 0.56, "baseline": 0.51, "live_accuracy": None,
         "deployment": "never deployed"},
        {"version": "v0003-c", "test_accuracy": 0.57, "baseline": 0.52, "live_accuracy": 0.55,
         "deployment": "in use"},
    ]
    chart.show_history(rows)
    shown(chart)
    marked = {k: [p.x() for p in s.points()] for k, s in chart.marks.items()}
    assert marked == {"in use": [2.0], "deployed before": [], "rolled back": [0.0],
                      "never deployed": [1.0]}
    shapes = {k: s.markerShape() for k, s in chart.marks.items()}
    assert shapes["rolled back"] != shapes["in use"]
    assert chart.marks["never deployed"].color() != chart.marks["deployed before"].color()
    # live figures are points for their own version, never a line between models
    assert [(p.x(), round(p.y(), 1)) for p in chart.live.points()] == [(0.0, 53.0), (2.0, 55.0)]
    assert chart.baseline.count() == 6  # the band spans each version's slot
    assert chart.axis_y.titleText() and chart.axis_x.titleText()
    low, high = chart.axis_y.min(), chart.axis_y.max()
    assert low == int(low) and high == int(high)


def test_empty_charts_say_what_to_do(qtbot):
    for chart in (AccuracyChart(), ImportanceChart()):
        qtbot.addWidget(chart)
        shown(chart)
        assert "Retrain now" in chart.chart().title()
        assert not chart.axis_x.isVisible()


def test_the_drift_tab_draws_psi_per_feature_with_the_alarm_line(qtbot):
    chart = DriftChart()
    qtbot.addWidget(chart)
    chart.show_drift(DriftReport(0.2, 0.25, False, 900, "", "", features=[
        FeatureDrift("volume", 0.31, 0.2, 0.6, True),
        FeatureDrift("funding_rate", 0.09, 0.1, 0.4, False)]))
    shown(chart)
    assert chart.features == ["volume", "funding_rate"]
    assert [p.x() for p in chart.threshold.points()] == [0.25, 0.25]
    # the feature over the line is drawn in the alarm colour, the other in the normal one
    names = chart.axis_y.categories()
    over = [chart.over.at(i) for i in range(len(names))]
    normal = [chart.bars.at(i) for i in range(len(names))]
    assert over[names.index("volume")] == 0.31 and normal[names.index("volume")] == 0
    assert normal[names.index("funding_rate")] == 0.09
    chart.show_drift(None, "Drift not measured yet (needs 1,000 new rows, has 455)")
    chart.sync()
    assert "needs 1,000 new rows" in chart.chart().title()
    assert chart.threshold.count() == 0
