"""A model the edge gate kept out can still be deployed from the dashboard, after a question."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox


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


def test_promoting_a_no_edge_model_asks_first_and_deploys_only_when_accepted(
        qtbot, make_tray_app, engine_factory, small_workspace):
    engine = engine_factory(edge_gate="true")  # the small data holds no provable edge
    gated = engine.retrain()
    assert gated.outcome == "no edge", gated.reason
    assert engine.store.aliases()["champion"] is None

    app = make_tray_app(engine=engine)
    dash = app.open_dashboard("versions")
    qtbot.waitUntil(lambda: dash.versions.table.rowCount() == 1, timeout=10_000)
    dash.versions.select_version(gated.version)
    assert dash.versions.table.status_of[gated.version] == "no edge"
    assert dash.versions.promote_button.isEnabled()

    seen: list[str] = []
    answer_next_box(QMessageBox.StandardButton.No, seen)
    dash.versions.promote_button.click()
    assert seen and gated.version in seen[0] and "Deploy it anyway?" in seen[0]
    assert not app.runner.is_busy("promote")
    assert not (small_workspace / "models" / "xgb_model.ubj").exists()

    answer_next_box(QMessageBox.StandardButton.Yes, seen)
    dash.versions.promote_button.click()
    qtbot.waitUntil(lambda: not app.runner.is_busy("promote"), timeout=60_000)
    assert engine.store.aliases()["champion"] == gated.version
    assert (small_workspace / "models" / "xgb_model.ubj").is_file()
