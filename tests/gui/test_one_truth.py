"""One truth on screen (issue 13, points 1, 3, 4, 5): every view renders from one snapshot,
a figure shown in two places is the same text, the stage reads the same everywhere,
feedback clears itself, and the window holds at common screen sizes."""

from __future__ import annotations

import re
import time

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QLabel, QPushButton
from test_tray_app import emit_from_engine_thread  # at collection: see test_notifications

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import DriftReport, FeatureDrift, HealthReport, PerformanceReport
from clm_tray.core.serialize import to_jsonable
from clm_tray.gui.snapshot import take_snapshot


def seed_checks(engine, champion: str) -> None:  # noqa: ANN001
    """The engine's own reports, as its checks record them: enough rows, live below
    always-guessing, a healthy backend."""
    now = time.time()
    drift = DriftReport(score=0.0312, threshold=0.25, drifted=False, window_rows=4823,
                        window_start="", window_end="", enough=True, reason="ok",
                        checked_at=now, min_rows=1000,
                        features=[FeatureDrift("funding_rate", 0.09, 0.1, 0.3, False),
                                  FeatureDrift("volume", 0.31, 0.2, 0.1, True)])
    engine.history.add_check("drift", to_jsonable(drift), at=now)
    perf = PerformanceReport(rows=455, accuracy=0.489, auc=0.5, log_loss=0.69,
                             test_accuracy=0.552, baseline=0.51, drop=0.063, degraded=True,
                             enough=True, reason="degraded", checked_at=now, min_rows=100)
    engine.history.add_check("performance", {**to_jsonable(perf), "version": champion}, at=now)
    health = HealthReport(ok=True, url="http://127.0.0.1:1/health", status_code=200,
                          latency_ms=12.0, reported_sha256="ab" * 32,
                          reported_version=champion, reason="ok", checked_at=now)
    engine.history.add_check("health", to_jsonable(health), at=now)


def visible_texts(dash, tray_app) -> dict[str, str]:  # noqa: ANN001
    """Every text a user can read (and hover) per place: cards, header, drift tab, tray."""
    cards = []
    for card in (dash.cards.model, dash.cards.quality, dash.cards.backend,
                 dash.cards.scheduler):
        for label in card.findChildren(QLabel):
            if label.isVisibleTo(card):
                cards.append(label.text())
                cards.append(label.toolTip())
    tray = tray_app.tray
    tray.rebuild_menu()
    return {
        "cards": "\n".join(cards),
        "header": dash.summary.full_text(),
        "drift tab": dash.drift.score.text(),
        "tray tooltip": tray.icon.toolTip(),
        "tray menu": tray.menu.actions()[0].text(),
    }


@pytest.fixture
def deployed_engine(engine_factory):  # noqa: ANN001
    engine = engine_factory()
    assert engine.retrain().outcome == "deployed"
    return engine


def test_every_view_renders_one_snapshot_and_shared_figures_read_the_same(
        qtbot, make_tray_app, deployed_engine):
    engine = deployed_engine
    champion = engine.store.aliases()["champion"]
    seed_checks(engine, champion)
    app = make_tray_app(engine=engine)
    dash = app.open_dashboard("drift")
    snap = take_snapshot(engine)  # ONE snapshot, handed to every view
    app.controller._on_snapshot(snap)
    dash.flush()
    texts = visible_texts(dash, app)
    everything = "\n".join(texts.values())
    f = snap.facts

    # each shared figure is shown in at least two places, as the very same text
    assert f.live == "Live 48.9 % — below always-guessing (51.0 %)"
    assert f.drift == "Drift 0.031 — normal (alarm above 0.250)"
    assert f.new_rows == "4,823 new rows since training"
    for fact, places in ((f.live, ("cards", "tray tooltip")),
                         (f.drift, ("cards", "drift tab", "tray tooltip")),
                         (f.new_rows, ("cards", "drift tab")),
                         (f.age, ("cards", "tray tooltip", "header")),
                         (f.backend.lower(), ("tray tooltip",))):
        for place in places:
            assert fact in texts[place], (fact, place, texts[place])
    assert f.backend in dash.cards.backend.headline.text()

    # and no place shows a different version of them
    def found(pattern: str) -> set[str]:
        return set(re.findall(pattern, everything, flags=re.IGNORECASE))

    assert found(r"Live (\d+\.\d) %") == {"48.9"}
    assert found(r"([\d,]+) new rows") == {"4,823"}
    assert found(r"(\d+(?:\.\d)? (?:min|h|days)) old") == {f.age.removesuffix(" old")}
    assert {w.lower() for w in found(r"\b((?:un)?healthy)\b")} == {"healthy"}
    assert found(r"Drift (\d\.\d+)") == {"0.031"}
    # plain words: no setting names or test statistics on the face of it
    for word in ("QT_CLM_", "McNemar", "p=", "b=", "`"):
        assert word not in "\n".join(v for k, v in texts.items()), word


def test_a_rollback_reads_as_a_rollback_in_header_strip_tooltip_and_menu(qtbot, make_tray_app):
    app = make_tray_app()
    dash = app.open_dashboard()
    bus = app.controller.engine.bus

    def emit(payload: ev.Payload) -> None:
        emit_from_engine_thread(bus, payload)

    emit(ev.CycleStarted(trigger="rollback", cycle=9))
    emit(ev.CycleStage(stage="verify", progress=0.86, message="polling the health URL "
                       + "x" * 400))
    line = "Rolling back — checking the backend (86 %)"
    qtbot.waitUntil(lambda: dash.stage_label.full_text() == line, timeout=5000)
    assert dash.summary.full_text() == line
    assert line in app.tray.icon.toolTip()
    app.tray.rebuild_menu()
    assert app.tray.menu.actions()[0].text() == line
    assert dash.cancel_button.isVisible()

    emit(ev.CycleStarted(trigger="manual", cycle=10))
    emit(ev.CycleStage(stage="train", progress=0.39, message="round 120 of 300",
                       rounds_done=120, rounds_total=300, seconds_left=21.0))
    line = "Retraining — training (39 %) · round 120 of 300 · about 21 s left"
    qtbot.waitUntil(lambda: dash.stage_label.full_text() == line, timeout=5000)
    assert dash.summary.full_text() == line and line in app.tray.icon.toolTip()
    assert dash.progress_bar.value() == 39


@pytest.mark.parametrize("size", [(1024, 768), (1920, 1080)])
def test_the_window_holds_at_common_sizes_with_long_texts(qtbot, make_tray_app, size):
    app = make_tray_app()
    dash = app.open_dashboard()
    dash.show_error("Retrain failed: " + "the backend did not report the deployed model " * 8)
    dash.show_done("Rolled back to v0003 — backend verified")
    app.controller.cycle_running = True
    app.controller.stage = ("verify", 0.86, "polling " + "http://127.0.0.1:8000/health " * 20)
    dash.show_running(True)
    long_summary = "Last cycle failed: " + "the backend kept answering 503 " * 12
    dash.summary.setText(long_summary)
    dash.resize(*size)
    qtbot.wait(50)
    for view in ("overview", "drift", "versions", "activity"):
        dash.show_view(view)
        qtbot.wait(20)
        assert dash.width() <= size[0] and dash.height() <= size[1], (view, dash.size())
        window = QRect(QPoint(0, 0), dash.size())
        for button in dash.findChildren(QPushButton):
            if button.isVisibleTo(dash):
                box = QRect(button.mapTo(dash, QPoint(0, 0)), button.size())
                assert window.contains(box), (view, button.text(), box, window)
    # the long header line is cut to fit, and shown whole on hover
    dash.summary.setText(long_summary)
    assert dash.width() <= size[0]
    assert dash.summary.is_elided() and dash.summary.toolTip() == long_summary
    app.controller.cycle_running = False


def test_an_error_banner_goes_away_once_a_later_cycle_succeeds(qtbot, make_tray_app):
    app = make_tray_app()
    dash = app.open_dashboard()
    app.controller.error.emit("Retrain failed: the data file was being written")
    assert dash.messages.banner.isVisibleTo(dash)
    assert app.controller.retrain()
    qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=120_000)
    qtbot.waitUntil(lambda: not dash.messages.banner.isVisibleTo(dash), timeout=10_000)
    assert dash.messages.done_notice.isVisibleTo(dash)
    assert dash.messages.done_notice.text().startswith("New model v0001")
