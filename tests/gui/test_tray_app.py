"""The tray app on a real engine: icon state, Retrain now, buttons, rollback, no-tray mode."""

from __future__ import annotations

import threading

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from clm_tray.core.app import events as ev
from clm_tray.core.app.status import Health, Outcome
from clm_tray.core.demo.feed import feed


def emit_from_engine_thread(bus: ev.EventBus, payload: ev.Payload, level: str = "info") -> None:
    """Publish like the engine does: from a thread that is not the GUI thread."""
    t = threading.Thread(target=lambda: bus.emit(payload, level))
    t.start()
    t.join()


def answer_next_box(button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Click a button of the next modal confirmation box, like the user would."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(20, click)


def test_icon_state_follows_engine_events(qtbot, make_tray_app):
    app = make_tray_app()
    tray, controller = app.tray, app.controller
    assert tray.state == Health.ATTENTION  # no model deployed yet
    assert "No model deployed yet" in tray.icon.toolTip()

    emit_from_engine_thread(controller.engine.bus, ev.CycleStarted(trigger="test", cycle=1))
    qtbot.waitUntil(lambda: tray.state == Health.WORKING, timeout=5000)
    emit_from_engine_thread(controller.engine.bus,
                            ev.CycleStage(stage="train", progress=0.25, message="training"))
    qtbot.waitUntil(lambda: "Retraining — training (25 %)" in tray.icon.toolTip(),
                    timeout=5000)
    tray.rebuild_menu()
    assert tray.menu.actions()[0].text() == "Retraining — training (25 %)"
    assert not tray.menu.actions()[0].isEnabled()
    assert tray.action("Cancel retraining").isEnabled()  # Cancel is one click away

    emit_from_engine_thread(controller.engine.bus,
                            ev.CycleFinished(outcome=Outcome.FAILED, reason="test", ok=False),
                            "error")
    qtbot.waitUntil(lambda: tray.state == Health.ATTENTION, timeout=5000)
    assert tray.icon.icon().cacheKey() != 0


def test_retrain_now_from_menu_runs_a_real_cycle_and_the_dashboard_updates(qtbot, make_tray_app):
    app = make_tray_app()
    dash = app.open_dashboard("versions")
    assert dash.versions.table.rowCount() == 0
    app.tray.rebuild_menu()
    retrain = app.tray.action("Retrain now")
    assert retrain.isEnabled() and dash.retrain_button.isEnabled()

    retrain.trigger()
    # buttons disable while the task runs, the menu item too; a second click is refused
    assert not dash.retrain_button.isEnabled()
    assert not retrain.isEnabled()
    assert app.controller.retrain() is False
    qtbot.waitUntil(lambda: dash.progress_strip.isVisible(), timeout=20_000)
    qtbot.waitUntil(lambda: dash.progress_bar.value() > 0, timeout=60_000)
    assert "Retraining" in dash.stage_label.text()
    assert app.tray.state == Health.WORKING

    qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=120_000)
    qtbot.waitUntil(lambda: dash.versions.table.rowCount() == 1, timeout=10_000)
    assert dash.versions.table.cell(0, 6) == "champion"
    assert dash.retrain_button.isEnabled()
    assert not dash.progress_strip.isVisible()
    qtbot.waitUntil(lambda: dash.activity.history_table.rowCount() == 1, timeout=10_000)
    assert dash.activity.history_table.cell(0, 2) == "deployed"
    assert len(dash.overview.importance_chart.features) == 22
    assert dash.cards.model.headline.text().startswith("v0001")
    assert "Retraining completed" in dash.activity.log_view.toPlainText()
    qtbot.waitUntil(lambda: app.tray.state == Health.HEALTHY, timeout=10_000)
    assert "Test accuracy" in app.tray.icon.toolTip()


def test_rollback_asks_first_and_only_runs_when_accepted(qtbot, make_tray_app, engine_factory):
    engine = engine_factory(shadow_min=50)
    assert engine.retrain().outcome == "deployed"
    feed(engine.settings.resolved_data_path, hours=30)
    second = engine.retrain()
    assert second.outcome == "deployed", second.reason
    first_id = next(v.id for v in engine.versions() if v.status == "previous")

    app = make_tray_app(engine=engine)
    dash = app.open_dashboard("versions")
    qtbot.waitUntil(lambda: dash.versions.table.rowCount() == 2, timeout=10_000)
    dash.versions.select_version(first_id)
    assert dash.versions.rollback_button.isEnabled()

    seen: list[str] = []
    answer_next_box(QMessageBox.StandardButton.No, seen)
    dash.versions.rollback_button.click()
    assert seen and first_id in seen[0]
    assert not app.runner.is_busy("rollback")
    assert engine.store.aliases()["champion"] == second.version

    delivered: list = []
    app.notifier.delivered.connect(delivered.append)
    answer_next_box(QMessageBox.StandardButton.Yes, seen)
    dash.versions.rollback_button.click()
    assert len(seen) == 2
    qtbot.waitUntil(lambda: not app.runner.is_busy("rollback"), timeout=60_000)
    assert engine.store.aliases()["champion"] == first_id
    # it ends with a visible notice in the window and a notification saying the same
    said = f"Rolled back to {first_id} — backend not checked (files only)"
    assert dash.messages.done_notice.isVisibleTo(dash) and dash.messages.done_notice.text() == said
    assert [(n.summary, n.body) for n in delivered] == [
        (f"Rolled back to {first_id}", "backend not checked (files only)")]
    qtbot.waitUntil(lambda: dash.versions.table.status_of.get(first_id) == "champion",
                    timeout=10_000)


def test_restart_backend_declined_does_nothing(qtbot, make_tray_app):
    app = make_tray_app()
    app.controller.confirm = lambda title, text: False
    assert app.controller.restart_backend() is False
    assert not app.runner.is_busy("restart")


def test_without_a_tray_the_dashboard_opens_and_closing_asks(qtbot, make_tray_app):
    app = make_tray_app(tray=False)
    assert app.tray is None
    dash = app.dashboard
    assert dash is not None and dash.isVisible()
    notice = dash.messages.notice
    assert "No system tray" in notice.text() and notice.isVisibleTo(dash)
    asked: list[bool] = []
    app.ask_quit = lambda: asked.append(True) or False  # keep running in the background
    dash.close()
    assert asked == [True]
    assert not dash.isVisible()
    assert app.controller.engine is not None and not app.controller._quitting
    app.open_dashboard("activity")
    assert dash.isVisible() and dash.current_view() == "activity"
    assert app.said_no_tray  # said once, not again on every open


def test_a_session_ending_mid_retrain_goes_through_the_clean_quit(qtbot, make_tray_app,
                                                                    monkeypatch):
    """Windows sign-out or a macOS log-out ends Qt's event loop without our Quit: the running
    cycle is still cancelled and recorded as cancelled, not killed and marked failed later."""
    from clm_tray.gui.app import _quit_with_the_session

    monkeypatch.setenv("CLM_TRAY_TRAIN_SLEEP", "30")
    app = make_tray_app()
    qapp = QApplication.instance()
    leave = _quit_with_the_session(qapp, app)
    try:
        assert app.controller.retrain()
        qtbot.waitUntil(lambda: app.controller.stage[0] == "train", timeout=60_000)
        qapp.aboutToQuit.emit()  # what Qt does when the session ends
        assert app.controller._quitting
        qtbot.waitUntil(lambda: not app.runner.is_busy("retrain"), timeout=10_000)
    finally:
        qapp.aboutToQuit.disconnect(leave)
    last = app.controller.engine.history.last_cycle()
    assert last is not None and last.outcome == Outcome.CANCELLED, last
